"""Dataset tables: read Parquet parts with upsert/dedup semantics; write validated Put* records."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tastemaker.data.csv_import import PARQUET_OPTIONS, convert_column
from tastemaker.data.schemas import Schema, arrow_schema, id_field, normalize_dataset_type
from tastemaker.errors import InvalidInputException

_ROW = "__row__"


def read_dataset(parts: Sequence[Path], schema: Schema, dataset_type: str) -> pa.Table:
    """All rows of a dataset's parts, in part order, projected onto `schema`'s columns.

    Parts written under an older schema gain null columns for new fields, drop removed ones, and have
    changed types cast (a value that cannot be cast raises InvalidInputException naming the part).
    Items/Users/Actions keep only the last record per id (INCREMENTAL imports and Put* calls are later
    parts); Interactions/Action_Interactions keep the first of rows that are identical in every column.
    Kept rows stay in their original order; the result may be chunked (one chunk per part or so).
    """
    dataset_type = normalize_dataset_type(dataset_type)
    target = arrow_schema(schema)
    tables = [_project(pq.read_table(path), target, path) for path in parts]
    table = pa.concat_tables(tables) if tables else target.empty_table()
    if table.num_rows == 0:
        return table
    key = id_field(dataset_type)
    if key is not None:
        return _last_per_key(table, key)
    return _drop_duplicates(table)


def _project(table: pa.Table, target: pa.Schema, path: Path) -> pa.Table:
    columns = []
    for field in target:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        if column.type != field.type:
            try:
                column = pc.cast(column, field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InvalidInputException(
                    f"Stored data in {path.name} has column {field.name} as {column.type}, which cannot be "
                    f"converted to {field.type} of the current schema: {exc}") from None
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=target)


def _last_per_key(table: pa.Table, key: str) -> pa.Table:
    """Keep each id's last row (upsert), ordered by where that last row sits."""
    return _one_per_group(table, [key], keep_last=True)


def _drop_duplicates(table: pa.Table) -> pa.Table:
    """Keep the first of rows that are equal in every column, in their original order."""
    return _one_per_group(table, table.column_names, keep_last=False)


def _one_per_group(table: pa.Table, keys: list[str], keep_last: bool) -> pa.Table:
    """Keep one row per distinct value of `keys` (the first or the last), preserving row order.

    A 64-bit fingerprint per row finds the rows that may repeat (usually none) with one sort. Rows with
    equal fingerprints are checked column by column against their group's kept row; only groups where
    that check fails (a fingerprint collision) go through Arrow's exact group-by.
    """
    fingerprints = _row_fingerprints(table, keys)
    ordered = np.sort(fingerprints)
    repeats = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(repeats) == 0:
        return table
    repeated = repeats[np.concatenate([[True], repeats[1:] != repeats[:-1]])]  # sorted, distinct
    if len(repeated) <= len(fingerprints) // 64:
        # Few repeats (the usual case): find their rows by binary search in the small sorted set.
        slot = np.minimum(np.searchsorted(repeated, fingerprints), len(repeated) - 1)
        rows = np.flatnonzero(repeated[slot] == fingerprints)
        order = rows[np.argsort(fingerprints[rows], kind="stable")]
    else:
        order = np.argsort(fingerprints, kind="stable")
    # `order` lists rows grouped by fingerprint, each group in table order (the argsort is stable).
    grouped = fingerprints[order]
    starts = np.flatnonzero(np.concatenate([[True], grouped[1:] != grouped[:-1]]))
    sizes = np.diff(np.append(starts, len(order)))
    shared = sizes > 1
    sorted_rows = order[np.repeat(shared, sizes)]  # rows of groups with 2+ rows, group by group
    sizes = sizes[shared]
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    is_candidate = np.zeros(table.num_rows, dtype=bool)
    is_candidate[sorted_rows] = True
    candidates = np.flatnonzero(is_candidate)  # ascending row numbers: cheap takes
    candidate_of_row = np.cumsum(is_candidate) - 1
    sorted_candidates = candidate_of_row[sorted_rows]
    group = np.empty(len(candidates), dtype=np.int64)
    group[sorted_candidates] = np.repeat(np.arange(len(sizes)), sizes)
    representative = sorted_candidates[(first + sizes - 1) if keep_last else first]  # index into candidates
    same = _rows_equal(table, keys, candidates, representative[group])
    keep = np.ones(table.num_rows, dtype=bool)
    keep[candidates] = False
    keep[candidates[representative]] = True
    collided = np.zeros(len(sizes), dtype=bool)
    collided[group[~same]] = True
    if collided.any():  # fingerprint collisions: settle those groups exactly
        rows = candidates[collided[group]]
        keep[rows] = False
        keep[_exact_group_rows(table, keys, rows, keep_last)] = True
    return _without_rows(table, np.flatnonzero(~keep))


def _without_rows(table: pa.Table, dropped: np.ndarray) -> pa.Table:
    """`table` minus the rows `dropped` (ascending); zero-copy slices when they are few."""
    if len(dropped) > 1000:
        keep = np.ones(table.num_rows, dtype=bool)
        keep[dropped] = False
        return table.filter(pa.array(keep))
    pieces, start = [], 0
    for row in dropped.tolist():
        if row > start:
            pieces.append(table.slice(start, row - start))
        start = row + 1
    if start < table.num_rows:
        pieces.append(table.slice(start))
    return pa.concat_tables(pieces) if pieces else table.slice(0, 0)


def _rows_equal(table: pa.Table, keys: list[str], rows: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Whether row `rows[i]` equals row `rows[other[i]]` in every key column (null equals null)."""
    same = np.ones(len(rows), dtype=bool)
    row_index, other_index = pa.array(rows), pa.array(other)
    for name in keys:
        a = table.column(name).take(row_index).combine_chunks()  # ascending rows: a cheap take
        b = a.take(other_index)
        equal = pc.fill_null(pc.equal(a, b), False)  # IEEE: -0.0 == 0.0
        both_null = pc.and_(pc.is_null(a), pc.is_null(b))
        same &= pc.or_(equal, both_null).to_numpy(zero_copy_only=False)
    return same


def _exact_group_rows(table: pa.Table, keys: list[str], rows: np.ndarray, keep_last: bool) -> np.ndarray:
    """The first (or last) row of each exact key group among `rows`, via Arrow's hash group-by."""
    subset = table.select(keys).take(pa.array(rows))
    for i, field in enumerate(subset.schema):
        if pa.types.is_floating(field.type):  # x + 0.0 turns -0.0 into 0.0, which compare equal
            subset = subset.set_column(i, field, pc.add(subset.column(i), pa.scalar(0.0, field.type)))
    subset = subset.append_column(_ROW, pa.array(rows))
    aggregate = "max" if keep_last else "min"
    kept = subset.group_by(keys, use_threads=False).aggregate([(_ROW, aggregate)]).column(f"{_ROW}_{aggregate}")
    return kept.to_numpy()


_MIX = np.uint64(0x9E3779B97F4A7C15)
_STRING_BASE = np.uint64(0x100000001B3)
_NULL = np.uint64(0x5BD1E9955BD1E995)


def _row_fingerprints(table: pa.Table, keys: list[str]) -> np.ndarray:
    """A uint64 per row from the key columns (equal rows give equal fingerprints; collisions are rare)."""
    result = np.zeros(table.num_rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name in keys:
            chunks = table.column(name).chunks
            column_hash = np.concatenate([_column_hash(c) for c in chunks]) if chunks else result
            result = (result * _MIX) ^ column_hash
        # final avalanche (splitmix64) so that similar rows spread over the whole range
        result ^= result >> np.uint64(30)
        result *= np.uint64(0xBF58476D1CE4E5B9)
        result ^= result >> np.uint64(27)
    return result


def _column_hash(array: pa.Array) -> np.ndarray:
    if pa.types.is_string(array.type):
        values = _string_hash(array)
    elif pa.types.is_boolean(array.type):
        values = pc.fill_null(array, False).to_numpy(zero_copy_only=False).astype(np.uint64)
    elif pa.types.is_floating(array.type):
        filled = pc.fill_null(array, 0).to_numpy()
        filled = np.where(filled == 0, 0, filled)  # -0.0 == 0.0
        values = filled.astype(np.float64).view(np.uint64)
    else:
        values = pc.fill_null(array, 0).to_numpy().astype(np.int64).view(np.uint64)
    if array.null_count:
        values = np.where(pc.is_valid(array).to_numpy(zero_copy_only=False), values, _NULL)
    return values


def _string_hash(array: pa.Array) -> np.ndarray:
    """Polynomial hash (mod 2**64) of each string's UTF-8 bytes, vectorised over the Arrow buffers."""
    result = np.empty(len(array), dtype=np.uint64)
    data_buffer = array.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    step = 1 << 20
    for start in range(0, len(array), step):
        part = array.slice(start, step)
        offsets = np.frombuffer(part.buffers()[1], dtype=np.int32)[part.offset: part.offset + len(part) + 1]
        first, stop = int(offsets[0]), int(offsets[-1])
        lengths = np.diff(offsets)
        position = np.arange(stop - first, dtype=np.int32) - np.repeat(offsets[:-1] - first, lengths)
        weighted = data[first:stop].astype(np.uint64)
        weighted *= _powers(int(lengths.max(initial=0)))[position]
        cumulative = np.empty(len(weighted) + 1, dtype=np.uint64)
        cumulative[0] = 0
        np.cumsum(weighted, out=cumulative[1:])
        hashes = cumulative[offsets[1:] - first] - cumulative[offsets[:-1] - first]
        result[start: start + len(part)] = hashes ^ (lengths.astype(np.uint64) * _MIX)
    return result


@functools.lru_cache(maxsize=8)
def _powers(length: int) -> np.ndarray:
    """_STRING_BASE ** i mod 2**64 for i < length (ids are at most 256 bytes; text at most ~80,000)."""
    bases = np.full(max(length, 1), _STRING_BASE, dtype=np.uint64)
    bases[0] = 1
    return np.cumprod(bases, dtype=np.uint64)


def write_records(records: Sequence[dict[str, Any]], schema: Schema, dataset_type: str, path: Path) -> int:
    """Validate Put* records (field name -> value; values typed or as strings) and write one Parquet file.

    Uses the CSV import's rules and messages; a problem raises InvalidInputException naming the record
    (0-based index) and field. None, "" and a missing key mean null. Returns the number of rows written.
    """
    normalize_dataset_type(dataset_type)
    known = set(schema.field_names)
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInputException(f"Invalid data in record[{index}]: expected an object of field values.")
        unknown = sorted(set(record) - known)
        if unknown:
            raise InvalidInputException(
                f"Invalid data in record[{index}]: field(s) {unknown} are not in the schema "
                f"(fields: {schema.field_names}).")
    target = arrow_schema(schema)
    columns = []
    for f in schema.fields:
        cells = []
        for index, record in enumerate(records):
            try:
                cells.append(_cell_text(record.get(f.name)))
            except TypeError as exc:
                raise InvalidInputException(f"Invalid data in record[{index}], field {f.name}: {exc}") from None
        converted, problems = convert_column(pa.array(cells, type=pa.string()), f, limit=1)
        if problems:
            row, message = problems[0]
            raise InvalidInputException(f"Invalid data in record[{row}], field {f.name}: {message}")
        columns.append(converted)
    table = pa.Table.from_arrays(columns, schema=target)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **PARQUET_OPTIONS)
    return table.num_rows


def _cell_text(value: Any) -> str | None:
    """The CSV cell a Python value stands for (so records and CSV files share one validator)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return repr(value)
    raise TypeError(f"a {type(value).__name__} value is not allowed; use a string, number or boolean.")
