"""Accuracy-bench helpers: read a Personalize-shaped dataset folder into TrainingData (same path as training)."""

from __future__ import annotations

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
