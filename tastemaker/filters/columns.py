"""Catalogue tables (items, users, actions) and the per-column indexes filters evaluate against."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ColumnsLike: TypeAlias = pa.Table | Mapping[str, Any]


def _to_arrow(column: Any) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column, pa.Array):
        return column.dictionary_decode() if pa.types.is_dictionary(column.type) else column
    try:
        return pa.array(column, from_pandas=True)  # from_pandas: NaN -> null
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([_text(v) for v in column], type=pa.string())


def _text(value: Any) -> str | None:
    """Text of a raw cell; None for null/NaN. Integral floats print without '.0'."""
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def as_text_array(column: Any) -> pa.Array:
    arr = _to_arrow(column)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return arr.cast(pa.string())
    if pa.types.is_integer(arr.type) or pa.types.is_boolean(arr.type):
        return arr.cast(pa.string())
    return pa.array([_text(v) for v in arr.to_pylist()], type=pa.string())


def as_float_array(column: Any) -> np.ndarray:
    arr = _to_arrow(column)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_null(arr.type):
        return np.asarray(arr.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.array([parse_number(v) for v in arr.to_pylist()], dtype=np.float64)


def parse_number(value: Any) -> float:
    """A cell as a number; NaN when null or not numeric (NaN never satisfies a positive comparison)."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def split_cell(value: Any, multi: bool) -> list[str]:
    """Values of one cell: `|`-split when multi-valued; empty parts and nulls give no value."""
    text = _text(value)
    if not text:
        return []
    return [part for part in text.split("|") if part] if multi else [text]


class CategoricalColumn:
    """String column as an inverted index (value -> rows) plus a forward index (row -> values)."""

    # Values present in more than 1/DENSE_FRACTION of rows keep a ready boolean mask.
    DENSE_FRACTION = 32

    def __init__(self, column: Any, n_rows: int, multi: bool) -> None:
        text = as_text_array(column)
        if multi:
            lists = pc.split_pattern(text, "|")
            flat = pc.list_flatten(lists)
            parents = np.asarray(pc.list_parent_indices(lists), dtype=np.int64)
        else:
            flat = text
            parents = np.arange(len(text), dtype=np.int64)
        keep = np.asarray(pc.fill_null(pc.not_equal(flat, ""), False), dtype=bool)
        encoded = pc.dictionary_encode(flat.filter(pa.array(keep)))
        codes = np.asarray(encoded.indices, dtype=np.int64)
        parents = parents[keep]
        self.n_rows = n_rows
        self.values: list[str] = encoded.dictionary.to_pylist()
        self.vocab: dict[str, int] = {v: i for i, v in enumerate(self.values)}
        n_codes = len(self.values)
        order = np.argsort(codes, kind="stable")
        self.inv_rows = parents[order].astype(np.int32)
        self.inv_ptr = np.zeros(n_codes + 1, dtype=np.int64)
        np.cumsum(np.bincount(codes, minlength=n_codes), out=self.inv_ptr[1:])
        self.fwd_codes = codes.astype(np.int32)  # parents are ascending already
        self.fwd_ptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(parents, minlength=n_rows), out=self.fwd_ptr[1:])
        self._dense: dict[int, np.ndarray] = {}

    def code_mask(self, code: int) -> np.ndarray:
        """Rows holding one value; large posting lists are cached as read-only masks."""
        cached = self._dense.get(code)
        if cached is not None:
            return cached
        rows = self.inv_rows[self.inv_ptr[code] : self.inv_ptr[code + 1]]
        mask = np.zeros(self.n_rows, dtype=bool)
        mask[rows] = True
        if len(rows) * self.DENSE_FRACTION > self.n_rows:
            mask.flags.writeable = False
            self._dense[code] = mask
        return mask

    def match_any(self, values: Iterable[str]) -> np.ndarray:
        """Rows holding at least one of `values` (read-only result; combine, never mutate)."""
        codes = sorted({c for c in (self.vocab.get(v) for v in values) if c is not None})
        if len(codes) == 1:
            return self.code_mask(codes[0])
        mask = np.zeros(self.n_rows, dtype=bool)
        for code in codes:
            mask[self.inv_rows[self.inv_ptr[code] : self.inv_ptr[code + 1]]] = True
        return mask

    def row_values(self, row: int) -> list[str]:
        codes = self.fwd_codes[self.fwd_ptr[row] : self.fwd_ptr[row + 1]]
        return [self.values[c] for c in codes]


class NumericColumn:
    """Numeric column as float64 with NaN for null."""

    def __init__(self, column: Any) -> None:
        self.data = as_float_array(column)

    def row_values(self, row: int) -> list[float]:
        value = float(self.data[row])
        return [] if math.isnan(value) else [value]


class EntityTable:
    """Ids plus metadata columns of one catalogue; column indexes are built once, on first use."""

    def __init__(self, ids: Sequence[Any] | np.ndarray, columns: ColumnsLike | None = None) -> None:
        self.ids = np.asarray(ids)
        self.n_rows = len(self.ids)
        self._raw: dict[str, Any] = {}
        if isinstance(columns, pa.Table):
            self._raw = {name: columns.column(name) for name in columns.column_names}
        elif columns is not None:
            self._raw = dict(columns)
        for name, column in self._raw.items():
            if len(column) != self.n_rows:
                raise ValueError(f"column {name!r} has {len(column)} rows; the catalogue has {self.n_rows} ids")
        self._indexes: dict[tuple[str, str], CategoricalColumn | NumericColumn] = {}
        self._row_of_id: dict[str, int] | None = None

    def raw_column(self, name: str) -> Any:
        """A column by schema field name (exact, else case-insensitive); the ids for *_ID fields."""
        if name in self._raw:
            return self._raw[name]
        for key, column in self._raw.items():
            if key.lower() == name.lower():
                return column
        if name.upper() in ("ITEM_ID", "USER_ID", "ACTION_ID"):
            return self.ids
        return [None] * self.n_rows  # a field with no data: every row is null

    def categorical(self, name: str, multi: bool) -> CategoricalColumn:
        key = ("multi" if multi else "single", name)
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = CategoricalColumn(self.raw_column(name), self.n_rows, multi)
        return index  # type: ignore[return-value]

    def numeric(self, name: str) -> NumericColumn:
        key = ("numeric", name)
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = NumericColumn(self.raw_column(name))
        return index  # type: ignore[return-value]

    def index_of(self, entity_id: Any) -> int | None:
        """Row position of an id, or None when unknown."""
        if self._row_of_id is None:
            self._row_of_id = {str(v): i for i, v in enumerate(self.ids.tolist())}
        return self._row_of_id.get(str(entity_id))

    def row(self, entity_id: Any) -> dict[str, Any] | None:
        """The metadata of one entity as {column: raw value}, or None when the id is unknown."""
        index = self.index_of(entity_id)
        if index is None:
            return None
        out: dict[str, Any] = {}
        for name, column in self._raw.items():
            value = column[index]
            out[name] = value.as_py() if isinstance(value, pa.Scalar) else value
        return out
