"""Accuracy-bench helpers: read a Personalize-shaped dataset folder into TrainingData (same path as training); limit
the v2 transformer's training threads (so that two runs can share the 2 cores)."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv

from tastemaker.recipes.training_data import TrainingConfig, TrainingData

ID_TYPES = {"USER_ID": pa.string(), "ITEM_ID": pa.string(), "TIMESTAMP": pa.int64(), "EVENT_VALUE": pa.float32(),
            "EVENT_TYPE": pa.string()}


def _read(path: Path) -> pa.Table:
    return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(column_types=ID_TYPES))


def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.csv", f"{stem}.csv.gz"):
        if (folder / name).exists():
            return folder / name
    return None


def load_dataset(folder: Path) -> TrainingData:
    """interactions.csv[.gz] (+ items.csv, users.csv when present) -> TrainingData with default config."""
    folder = Path(folder)
    interactions_path = _find(folder, "interactions")
    if interactions_path is None:
        raise SystemExit(f"no interactions.csv[.gz] in {folder}")
    items_path, users_path = _find(folder, "items"), _find(folder, "users")
    return TrainingData.from_tables(
        _read(interactions_path),
        _read(items_path) if items_path else None,
        _read(users_path) if users_path else None,
        TrainingConfig(),
    )


V2_THREADS_ENV = "TASTEMAKER_BENCH_V2_THREADS"  # read by limit_v2_threads in the benches' child processes


def limit_v2_threads(threads: int = 0) -> None:
    """Train v2 on `threads` torch threads (0: V2_THREADS_ENV when set, else the recipe's own choice); this process
    and the children it starts afterwards."""
    threads = threads or int(os.environ.get(V2_THREADS_ENV, "0"))
    if not threads:
        return
    from tastemaker.recipes import sasrec_train

    os.environ[V2_THREADS_ENV] = str(threads)
    sasrec_train.default_threads = lambda _cfg: threads
