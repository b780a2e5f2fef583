"""Per-request filter mask time at 100,000 items, beside a plain top-25 argpartition as the reference."""

from __future__ import annotations

import argparse
import time

import numpy as np

from tastemaker.data.schemas import Schema, SchemaField
from tastemaker.filters import FilterCatalog, FilterRequest, check_filter, compile_filter, parse_filter

EXPRESSION = (
    "INCLUDE ItemID WHERE Items.GENRES IN ($GENRE)"
    ' | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")'
)
WINDOW = (
    "INCLUDE ItemID WHERE Items.GENRES IN ($GENRE) AND Items.PRICE < $MAX"
    ' | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch") AND Interactions.TIMESTAMP > $SINCE'
)
SCHEMAS = {
    "Items": Schema("items", (SchemaField("ITEM_ID", "string"), SchemaField("GENRES", "string", categorical=True),
                              SchemaField("PRICE", "float"))),
    "Interactions": Schema("interactions", (SchemaField("USER_ID", "string"), SchemaField("ITEM_ID", "string"),
                                            SchemaField("TIMESTAMP", "long"), SchemaField("EVENT_TYPE", "string"))),
}


def median_us(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--genres", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    names = [f"genre{g}" for g in range(args.genres)]
    genres = ["|".join(rng.choice(names, size=rng.integers(1, 4), replace=False)) for _ in range(args.items)]
    item_ids = np.array([f"item{i}" for i in range(args.items)])
    prices = rng.uniform(1, 100, args.items)

    start = time.perf_counter()
    catalog = FilterCatalog(item_ids, {"GENRES": genres, "PRICE": prices})
    compiled = compile_filter(check_filter(parse_filter(EXPRESSION), SCHEMAS), catalog)
    compile_s = time.perf_counter() - start
    window = compile_filter(check_filter(parse_filter(WINDOW), SCHEMAS), catalog)

    history = {
        "watch": (rng.integers(0, args.items, 100).astype(np.int32), np.arange(100, 0, -1, dtype=np.int64)),
        "click": (rng.integers(0, args.items, 100).astype(np.int32), np.arange(100, 0, -1, dtype=np.int64)),
    }
    requests = [FilterRequest(values={"GENRE": [str(rng.choice(names))]}, history=history) for _ in range(64)]
    window_requests = [
        FilterRequest(values={"GENRE": [str(rng.choice(names))], "MAX": ["50"], "SINCE": ["50"]}, history=history)
        for _ in range(64)
    ]
    scores = rng.standard_normal(args.items).astype(np.float32)
    counter = iter(range(10**9))

    mask_us = median_us(lambda: compiled.item_mask(requests[next(counter) % 64]), args.repeats)
    window_us = median_us(lambda: window.item_mask(window_requests[next(counter) % 64]), args.repeats)
    top_us = median_us(lambda: np.argpartition(-scores, 25)[:25], args.repeats)
    masked = np.where(compiled.item_mask(requests[0]), scores, -np.inf).astype(np.float32)
    apply_us = median_us(lambda: np.where(compiled.item_mask(requests[0]), scores, -np.inf), args.repeats)

    print(f"items: {args.items:,}  genres: {args.genres}  history: 2 event types x 100")
    print(f"compile (build GENRES index + first filter): {compile_s * 1e3:.1f} ms")
    print(f"filter mask per request, median:            {mask_us:8.1f} us  ({EXPRESSION})")
    print(f"  with price + time window (4 conditions):  {window_us:8.1f} us")
    print(f"mask + apply to scores (np.where):          {apply_us:8.1f} us")
    print(f"reference: argpartition top-25 of float32:  {top_us:8.1f} us")
    print(f"ratio mask / top-25:                         {mask_us / top_us:8.2f}")
    print(f"allowed items in one request: {int(np.isfinite(masked).sum()):,}")


if __name__ == "__main__":
    main()
