"""Dataset tables: read Parquet parts with upsert/dedup semantics; write validated Put* records."""

from __future__ import annotations

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
    parts); Interactions/Action_Interactions keep one copy of rows that are identical in every column.
    """
    dataset_type = normalize_dataset_type(dataset_type)
    target = arrow_schema(schema)
    tables = [_project(pq.read_table(path), target, path) for path in parts]
    table = pa.concat_tables(tables) if tables else target.empty_table()
    if table.num_rows == 0:
        return table.combine_chunks()
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
    rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
    indexed = pa.table({key: table.column(key), _ROW: rows})
    last = indexed.group_by(key, use_threads=False).aggregate([(_ROW, "max")]).column(f"{_ROW}_max")
    if len(last) == table.num_rows:
        return table.combine_chunks()
    return table.take(np.sort(last.to_numpy())).combine_chunks()


def _drop_duplicates(table: pa.Table) -> pa.Table:
    """Keep the first of rows that are equal in every column, in their original order."""
    rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
    indexed = table.append_column(_ROW, rows)
    first = indexed.group_by(table.column_names, use_threads=False).aggregate([(_ROW, "min")])
    keep = first.column(f"{_ROW}_min")
    if len(keep) == table.num_rows:
        return table.combine_chunks()
    return table.take(np.sort(keep.to_numpy())).combine_chunks()


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
