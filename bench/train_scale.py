"""Training at scale: aws-user-personalization vs a raw implicit ALS fit on the same 20M synthetic interactions.

    .venv/bin/python bench/train_scale.py [--users 140000 --items 27000 --interactions 20000000]

Power-law data (user activity log-normal, item popularity Zipf-like). Each side runs in its own process,
so the printed peak memory (ru_maxrss) is its own. Targets: recipe time <= 1.5x raw ALS, peak <= 8 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FACTORS = 149  # aws-user-personalization's default hidden_dimension
START = 1_600_000_000


def generate(n_users: int, n_items: int, n_interactions: int, seed: int = 0):
    """(user codes int32, item codes int32, timestamps int64) with power-law activity and popularity."""
    import numpy as np

    rng = np.random.default_rng(seed)
    activity = rng.lognormal(mean=0.0, sigma=1.0, size=n_users)
    per_user = np.maximum(5, np.round(activity / activity.sum() * n_interactions)).astype(np.int64)
    users = np.repeat(np.arange(n_users, dtype=np.int32), per_user)[:n_interactions]
    popularity = 1.0 / np.power(np.arange(n_items) + 10.0, 0.9)
    items = rng.choice(n_items, size=len(users), p=popularity / popularity.sum()).astype(np.int32)
    times = START + rng.integers(0, 365 * 86_400, size=len(users), dtype=np.int64)
    return users, items, times


def table_from_codes(users, items, times):
    """A Personalize-shaped interactions table (string ids, dictionary-encoded to keep generation cheap)."""
    import numpy as np
    import pyarrow as pa

    user_names = pa.array([f"user-{u}" for u in range(int(users.max()) + 1)])
    item_names = pa.array([f"item-{i}" for i in range(int(items.max()) + 1)])
    return pa.table({
        "USER_ID": pa.DictionaryArray.from_arrays(pa.array(users), user_names),
        "ITEM_ID": pa.DictionaryArray.from_arrays(pa.array(items), item_names),
        "TIMESTAMP": pa.array(np.asarray(times)),
    })


def child(side: str, args: argparse.Namespace) -> None:
    import numpy as np
    import scipy.sparse as sp

    users, items, times = generate(args.users, args.items, args.interactions)
    result: dict = {"side": side, "interactions": len(users)}
    if side == "recipe":
        from tastemaker.recipes import get_recipe
        from tastemaker.recipes.training_data import TrainingConfig, TrainingData

        table = table_from_codes(users, items, times)
        del users, items, times
        started = time.perf_counter()
        data = TrainingData.from_tables(table, None, None, TrainingConfig())
        del table
        result["prepare_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        model = get_recipe("aws-user-personalization").fit(data, {}, seed=0)
        result["fit_s"] = round(time.perf_counter() - started, 1)
        result["engine"] = model.settings["engine"]
    else:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        started = time.perf_counter()
        matrix = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)),
                               shape=(int(users.max()) + 1, args.items))
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        result["prepare_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        model = AlternatingLeastSquares(factors=FACTORS, regularization=0.1, alpha=10.0, iterations=15,
                                        random_state=0)
        with threadpool_limits(1, "blas"):
            model.fit(matrix, show_progress=False)
        result["fit_s"] = round(time.perf_counter() - started, 1)
    result["peak_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2, 2)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=140_000)
    parser.add_argument("--items", type=int, default=27_000)
    parser.add_argument("--interactions", type=int, default=20_000_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return
    results = {}
    for side in ("raw-als", "recipe"):
        out = subprocess.run([sys.executable, __file__, "--child", side, "--users", str(args.users),
                              "--items", str(args.items), "--interactions", str(args.interactions)],
                             capture_output=True, text=True, check=False)
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        results[side] = json.loads(lines[-1]) if lines else {"error": out.stderr.strip()[-300:]}
        print(json.dumps(results[side]), flush=True)
    raw, ours = results["raw-als"], results["recipe"]
    if "fit_s" in raw and "fit_s" in ours:
        total_ours = ours["prepare_s"] + ours["fit_s"]
        total_raw = raw["prepare_s"] + raw["fit_s"]
        print(f"\n{args.interactions:,} interactions, {args.users:,} users, {args.items:,} items, {FACTORS} factors")
        print(f"raw implicit ALS : prepare {raw['prepare_s']:6.1f} s  fit {raw['fit_s']:6.1f} s  "
              f"peak {raw['peak_gib']:.2f} GiB")
        print(f"aws-user-pers.   : prepare {ours['prepare_s']:6.1f} s  fit {ours['fit_s']:6.1f} s  "
              f"peak {ours['peak_gib']:.2f} GiB  (engine {ours['engine']})")
        print(f"ratio (prepare + fit): {total_ours / total_raw:.2f}x (target <= 1.5x); "
              f"fit only: {ours['fit_s'] / raw['fit_s']:.2f}x")


if __name__ == "__main__":
    main()
