"""The serving catalogue: the model's items plus items only the Items dataset knows (e.g. from PutItems)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastemaker.realtime.inline import slow_step
from tastemaker.recipes.base import TrainedModel

ITEM_ID = "ITEM_ID"
CREATION_TIMESTAMP = "CREATION_TIMESTAMP"


@dataclass
class ServingCatalog:
    """Items a request may get: positions [0, n_model) are the model's items, the rest are newer items.

    `metadata` is the Items table reordered to the catalogue (None without an Items dataset); item ids
    missing from the Items dataset get null rows.
    """

    item_ids: np.ndarray  # str, (n,)
    n_model: int
    metadata: pa.Table | None
    created_at: np.ndarray  # int64 epoch seconds: CREATION_TIMESTAMP, else first interaction; -1 unknown
    popularity: np.ndarray  # float32 unique users per item (0 for items the model never saw)
    position: dict[str, int]
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        return len(self.item_ids)

    def index_of(self, item_id: str) -> int:
        return self.position.get(item_id, -1)

    def indices_of(self, ids: list[str]) -> np.ndarray:
        get = self.position.get
        return np.fromiter((get(i, -1) for i in ids), dtype=np.int64, count=len(ids))

    def reference_time(self) -> int:
        """'Now' for item ages: the newest creation or first-interaction time the catalogue knows."""
        known = self.created_at[self.created_at >= 0]
        return int(known.max()) if known.size else 0

    def metadata_for(self, positions: list[int], columns: list[str]) -> list[dict[str, str]]:
        """The requested Items columns of these items as strings (multi-values keep their `|`)."""
        if self.metadata is None or not positions:
            return [{} for _ in positions]
        names = {name.upper(): name for name in self.metadata.column_names}
        picked = self.metadata.take(pa.array(positions, type=pa.int64()))
        out: list[dict[str, str]] = [{} for _ in positions]
        for column in columns:
            actual = names.get(column.upper())
            if actual is None:
                continue
            for row, value in enumerate(picked.column(actual).to_pylist()):
                if value is not None:
                    out[row][column] = _text(value)
        return out

    def derived(self, key: str, build: Any) -> Any:
        """A value computed once per catalogue snapshot (filter catalogue, compiled filters, masks)."""
        hit = self._derived.get(key)
        if hit is None:
            slow_step("catalogue derivation")
            with self._lock:
                hit = self._derived.get(key)
                if hit is None:
                    hit = build()
                    self._derived[key] = hit
        return hit


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


POSITION_CHUNK = 8192  # ids added to the position dict per C-level call (each holds the GIL for well under 1 ms)


def _add_positions(position: dict[str, int], ids: np.ndarray, start: int) -> None:
    """position[id] = start + its index, a chunk at a time: one dict(zip()) over 10^5 ids is one C call that holds
    the GIL for milliseconds; between chunks the interpreter can hand it to the event loop."""
    for lo in range(0, len(ids), POSITION_CHUNK):
        chunk = ids[lo:lo + POSITION_CHUNK].tolist()
        position.update(zip(chunk, range(start + lo, start + lo + len(chunk)), strict=True))


def same_items(model: TrainedModel, built: Iterable[ServingCatalog]) -> ServingCatalog | None:
    """One of the serving catalogues in `built` whose model had this model's item ids in the same order (a version
    retrained on the same catalogue: an UpdateCampaign's usual target), or None. `built` is what the process's
    catalogue cache (ServingCaches.catalogs, which holds nothing else) holds for an Items version."""
    model_ids = np.asarray(model.item_ids)
    n_model = len(model_ids)
    return next((c for c in built if c.n_model == n_model and np.array_equal(c.item_ids[:n_model], model_ids)),
                None)


def build_catalog(model: TrainedModel, items: pa.Table | None, like: ServingCatalog | None = None) -> ServingCatalog:
    """Extend the model's catalogue with the Items dataset's other ids and align the metadata to it.

    The matching of ids between the model and the table runs in Arrow's compute kernels (hash lookups in C++,
    outside the GIL); the only Python-level pass is the id -> position dict, built in chunks. A serving worker builds this in the
    background when it switches to a new model, and Python loops there took its event loop's GIL for tens of ms.

    `like`: a catalogue built from the same Items table for a model with the same item ids (same_items). Its ids,
    position dict and aligned metadata depend on nothing else and are shared (`items` is then not read); only
    this model's first-seen times and popularity are its own. No dict of 10^5 ids and no Arrow conversion of them
    then hold the GIL while requests wait."""
    if like is not None:
        n_model, all_ids, metadata, position = like.n_model, like.item_ids, like.metadata, like.position
    else:
        model_ids = np.asarray(model.item_ids).astype(str)
        n_model = len(model_ids)
        all_ids, metadata, position = _align(model_ids, items)
    created = np.full(len(all_ids), -1, np.int64)
    created[:n_model] = np.asarray(model.item_first_seen, dtype=np.int64)
    if metadata is not None and CREATION_TIMESTAMP in metadata.column_names:
        stamps = pc.fill_null(metadata.column(CREATION_TIMESTAMP), -1).to_numpy(zero_copy_only=False)
        if stamps.dtype.kind == "f":
            stamps = np.where(np.isnan(stamps), -1, stamps)
        stamps = stamps.astype(np.int64)
        created = np.where(stamps >= 0, stamps, created)
    popularity = np.zeros(len(all_ids), np.float32)
    popularity[:n_model] = np.asarray(model.item_popularity, dtype=np.float32)
    return ServingCatalog(all_ids, n_model, metadata, created, popularity, position)


def _align(model_ids: np.ndarray, items: pa.Table | None) -> tuple[np.ndarray, pa.Table | None, dict[str, int]]:
    """(catalogue ids: the model's, then the table's others; the table's rows in that order; id -> position)."""
    n_model = len(model_ids)
    position: dict[str, int] = {}
    _add_positions(position, model_ids, 0)
    if items is None or items.num_rows == 0 or ITEM_ID not in items.column_names:
        return model_ids, None, position
    table_ids = pc.cast(items.column(ITEM_ID), pa.string()).combine_chunks()
    extra_ids = pc.drop_null(pc.filter(table_ids, pc.invert(pc.is_in(table_ids, value_set=pa.array(model_ids)))))
    extra = np.asarray(extra_ids.to_numpy(zero_copy_only=False), dtype=str)
    _add_positions(position, extra, n_model)
    all_ids = np.concatenate([model_ids, extra]) if len(extra) else model_ids
    metadata = items.take(pc.index_in(pa.array(all_ids), value_set=table_ids))  # null rows: not in the table
    return all_ids, metadata, position
