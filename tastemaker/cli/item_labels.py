"""What quickstart shows beside item ids on a user's own data, and which taste its demo streams.

The label attribute is chosen from the Items schema: GENRES or CATEGORY_L1 when present, otherwise the
categorical field whose values group the items best (a handful to a few dozen distinct values, covering most
items) -- not a near-unique field such as a brand or an id. Multi-valued fields ("Action|Sci-Fi") count every
value, so a user who watched "Action|Sci-Fi" films is not said to discover Sci-Fi. A title comes from the
`"itemName": true` field or a column named like a title.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

PREFERRED = ("GENRES", "CATEGORY_L1")
TITLE_NAMES = ("TITLE", "NAME", "ITEM_NAME", "PRODUCT_NAME", "PRODUCT_TITLE", "MOVIE_TITLE")
MAX_GROUPS = 60


def _title_field(fields: list[dict[str, Any]]) -> str | None:
    named = [f["name"] for f in fields if f.get("itemName")]
    return named[0] if named else next((f["name"] for f in fields if f["name"].upper() in TITLE_NAMES), None)


def _groups(values: list[Any]) -> Counter[str]:
    return Counter(v for value in values if value for v in str(value).split("|") if v)


def read_items(path: Path, schema: dict[str, Any]) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Each item's values of the chosen attribute, and each item's title (empty dicts when there are none)."""
    import pyarrow.csv as pacsv

    fields = schema["fields"]
    title = _title_field(fields)
    strings = [f["name"] for f in fields if f["name"] != "ITEM_ID" and "string" in str(f.get("type"))]
    candidates = [n for n in PREFERRED if n in strings] or [f["name"] for f in fields if f.get("categorical")]
    columns = ["ITEM_ID", *dict.fromkeys(c for c in [*candidates, title] if c)]
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        include_columns=columns, column_types={c: "string" for c in columns}))
    ids = [str(i) for i in table.column("ITEM_ID").to_pylist()]
    best: tuple[float, str] | None = None
    for name in candidates:
        values = table.column(name).to_pylist()
        groups = _groups(values)
        covered = sum(1 for v in values if v) / max(len(values), 1)
        if name in PREFERRED or 3 <= len(groups) <= MAX_GROUPS:
            score = (2.0 if name in PREFERRED else 0.0) + covered
            if best is None or score > best[0]:
                best = (score, name)
    item_values: dict[str, tuple[str, ...]] = {}
    if best is not None:
        for item, value in zip(ids, table.column(best[1]).to_pylist(), strict=True):
            item_values[item] = tuple(v for v in str(value or "").split("|") if v) or ("?",)
    titles = {}
    if title:
        titles = {item: str(t) for item, t in zip(ids, table.column(title).to_pylist(), strict=True) if t}
    return item_values, titles


def choose_discovery(item_values: dict[str, tuple[str, ...]], popularity: Counter[str], history: list[str],
                     count: int = 6) -> tuple[str, list[str], int]:
    """(the value to stream, the popular unseen items carrying it, how often the user's past items carry it).

    The value is the one the user's history touches least (ideally never), among values with `count` unseen
    items; the items prefer those that share no value with the user's two main tastes."""
    taste = Counter(v for item in history for v in item_values.get(item, ()))
    seen = set(history)
    unseen: dict[str, list[str]] = {}
    for item, _ in popularity.most_common():
        if item not in seen:
            for value in item_values.get(item, ()):
                unseen.setdefault(value, []).append(item)
    usable = [v for v, items in unseen.items() if len(items) >= count and v != "?"]
    if not usable:
        picks = [i for i, _ in popularity.most_common() if i not in seen][:count]
        return "?", picks, 0
    reach = Counter({v: sum(popularity[i] for i in items) for v, items in unseen.items()})
    value = min(usable, key=lambda v: (taste.get(v, 0), -reach[v], v))
    main = {v for v, _ in taste.most_common(2)}
    items = unseen[value]
    clean = [i for i in items if not main & set(item_values.get(i, ()))]
    picks = (clean + [i for i in items if i not in clean])[:count]
    return value, picks, taste.get(value, 0)
