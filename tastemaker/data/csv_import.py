"""Bulk import: stream CSV files, validate every value against the schema, write Parquet part files.

Line numbers in failure reasons are physical lines of the file (header = line 1). They stay exact with
quoted values that span lines and with blank lines (which are skipped), because the error path re-reads
the file with Python's csv module to map record numbers to lines.

Rows Personalize skips instead of failing the import: in Items, Users and Actions data, a row with an empty
cell in a non-nullable metadata field (e.g. 13 movies of MovieLens with no YEAR) is left out and the import
goes on, as Personalize finishes such an import ACTIVE. The id field and every Interactions field stay strict.
What was skipped (count and the first examples with their lines) comes back in ImportResult for the job's
log and `tastemaker import-report`.

Columns with an empty name in the header are ignored and reported the same way (ImportResult.ignored_columns):
pandas' `DataFrame.to_csv(path)` writes its index as such a first column, and AWS's own sample notebooks
import files written that way. A named column that is not in the schema still fails the import.

Progress: `import_csv(progress=...)` is called after each parsed block with the rows read so far (kept and
skipped, all files) and the source bytes read so far (compressed bytes for `.gz` files, as their sizes are), so
a caller can show an import's advance while it runs (tastemaker.jobs.tasks records it in the job's document).
"""

from __future__ import annotations

import csv
import gzip
import io
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from tastemaker.data.schemas import (
    ID_FIELDS,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    TIMESTAMP_FIELDS,
    Schema,
    SchemaField,
    arrow_schema,
    normalize_dataset_type,
    timestamp_problem,
)
from tastemaker.data.sources import CsvSource, DataLocationError

BLOCK_SIZE = 32 << 20  # bytes of CSV parsed per batch: about 1M interaction rows
DEFAULT_ROWS_PER_FILE = 3_000_000
MAX_ID_CHARS = 256
MAX_CATEGORICAL_CHARS = 1000  # whole cell, pipes included (also IMPRESSION)
MAX_TEXTUAL_CHARS = 20000
PARQUET_OPTIONS: dict[str, Any] = {"compression": "snappy", "write_statistics": False}


ImportProgress = Callable[[int, int], None]  # (rows read so far, source bytes read so far)


class CsvImportError(Exception):
    """The CSV data does not fit the schema; `reason` names file, line, column and problem."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


MAX_SKIP_EXAMPLES = 5
# Dataset type -> its id field: the one field of an entity dataset whose empty cell still fails the import.
ENTITY_ID_FIELDS = {"Items": "ITEM_ID", "Users": "USER_ID", "Actions": "ACTION_ID"}


@dataclass
class ImportResult:
    rows: int  # rows imported
    files: list[Path]
    bytes_read: int
    skipped: int = 0  # rows left out (see the module docstring)
    skipped_examples: list[str] = field(default_factory=list)  # the first few, with file, line and reason
    ignored_columns: list[str] = field(default_factory=list)  # unnamed header columns left out, per file


# ---------------------------------------------------------------------------------------------------
# Value validation shared with tables.write_records: string cells in, typed Arrow array + problems out


def convert_column(values: pa.Array, f: SchemaField, limit: int) -> tuple[pa.Array | None, list[tuple[int, str]]]:
    """Convert a string array (null = empty cell) to the field's Arrow type.

    Returns (converted, []) when every value is valid, else (None, problems) with up to `limit`
    (row index, message) pairs sorted by row.
    """
    problems: list[tuple[int, str]] = []
    if not f.nullable and values.null_count:
        for row in _first_true(pc.is_null(values), limit):
            problems.append((row, f"empty value, but {f.name} is not nullable."))
    converter = _CONVERTERS[f.avro_type]
    converted = converter(values, f, limit, problems)
    problems.sort()
    if problems:
        return None, problems[:limit]
    return converted, []


def _first_true(mask: pa.Array, limit: int) -> list[int]:
    """Indices of the first `limit` true entries of a boolean array (nulls count as false)."""
    if not pc.any(mask).as_py():
        return []
    return pc.indices_nonzero(mask)[:limit].to_pylist()


def _show(value: str) -> str:
    return f"'{value}'" if len(value) <= 60 else f"'{value[:57]}...'"


def _string(values: pa.Array, f: SchemaField, limit: int, problems: list[tuple[int, str]]) -> pa.Array:
    max_chars = None
    if f.name in ID_FIELDS:
        max_chars, what = MAX_ID_CHARS, "ids"
    elif f.textual:
        max_chars, what = MAX_TEXTUAL_CHARS, "textual values"
    elif f.categorical or f.name == "IMPRESSION":
        max_chars, what = MAX_CATEGORICAL_CHARS, "categorical values"
    # UTF-8 byte length bounds the character count from above, and costs far less to compute.
    if (max_chars is not None and values.null_count < len(values)
            and pc.max(pc.binary_length(values)).as_py() > max_chars):
        lengths = pc.utf8_length(values)
        for row in _first_true(pc.greater(lengths, max_chars), limit):
            message = f"value is {lengths[row].as_py()} characters long; {what} are limited to {max_chars}."
            problems.append((row, message))
    return values


def _integer(values: pa.Array, f: SchemaField, limit: int, problems: list[tuple[int, str]]) -> pa.Array:
    target = pa.int32() if f.avro_type == "int" else pa.int64()
    # Arrow's cast also takes hex ("0x1F"); accept only optional '-' and decimal digits.
    if not pc.all(pc.ascii_is_decimal(values)).as_py():
        candidates = pc.invert(pc.ascii_is_decimal(values))
        bad = pc.and_kleene(candidates, pc.invert(pc.match_substring_regex(values, r"^-[0-9]+$")))
        rows = _first_true(bad, limit)
        for row in rows:
            problems.append((row, f"{_show(values[row].as_py())} is not an integer."))
        if rows:
            values = pc.if_else(bad, pa.scalar(None, pa.string()), values)
    try:
        converted = pc.cast(values, target)
    except pa.ArrowInvalid:
        for row in _failing_cast_rows(values, target, limit):
            problems.append((row, f"{_show(values[row].as_py())} is out of range for {f.avro_type}."))
        return values
    if f.name in TIMESTAMP_FIELDS:  # epoch seconds: refused outside the range training can use
        outside = pc.or_(pc.less(converted, MIN_TIMESTAMP), pc.greater(converted, MAX_TIMESTAMP))
        for row in _first_true(outside, limit):
            problems.append((row, str(timestamp_problem(converted[row].as_py()))))
    return converted


def _floating(values: pa.Array, f: SchemaField, limit: int, problems: list[tuple[int, str]]) -> pa.Array:
    target = pa.float32() if f.avro_type == "float" else pa.float64()
    try:
        converted = pc.cast(values, target)
    except pa.ArrowInvalid:
        for row in _failing_cast_rows(values, target, limit):
            problems.append((row, f"{_show(values[row].as_py())} is not a {f.avro_type}."))
        return values
    # NaN, infinities and overflow (1e50 as float) would poison training.
    for row in _first_true(pc.invert(pc.is_finite(converted)), limit):
        problems.append((row, f"{_show(values[row].as_py())} is not a finite {f.avro_type}."))
    return converted


def _boolean(values: pa.Array, f: SchemaField, limit: int, problems: list[tuple[int, str]]) -> pa.Array:
    valid = pc.is_in(values, value_set=pa.array(["true", "false"]))
    bad = pc.and_(pc.invert(valid), pc.is_valid(values))
    for row in _first_true(bad, limit):
        problems.append((row, f"{_show(values[row].as_py())} is not a boolean (use lowercase true or false)."))
    return pc.equal(values, "true")


def _failing_cast_rows(values: pa.Array, target: pa.DataType, limit: int) -> list[int]:
    """Rows whose cast fails, found by bisection (about 2n cast work per bad row)."""
    found: list[int] = []

    def search(start: int, length: int) -> None:
        if len(found) >= limit or length == 0:
            return
        try:
            pc.cast(values.slice(start, length), target)
            return
        except pa.ArrowInvalid:
            pass
        if length == 1:
            found.append(start)
            return
        half = length // 2
        search(start, half)
        search(start + half, length - half)

    search(0, len(values))
    return found


_CONVERTERS = {"string": _string, "int": _integer, "long": _integer, "float": _floating, "double": _floating,
               "boolean": _boolean}


# ---------------------------------------------------------------------------------------------------
# Import


def import_csv(sources: Sequence[CsvSource], schema: Schema, dataset_type: str, out_dir: Path, *,
               max_errors: int = 5, rows_per_file: int = DEFAULT_ROWS_PER_FILE, min_rows: int = 0,
               progress: ImportProgress | None = None) -> ImportResult:
    """Validate the CSV files against `schema` and write them as part-NNNNN.parquet files into `out_dir`.

    The header names schema fields in any order; nullable fields may be left out (they import as nulls).
    Raises CsvImportError naming up to `max_errors` problems (file, line, column); the first file with a
    problem is read to its end to collect them. Raises DataLocationError when a source stops being
    readable mid-stream. Files written so far stay in `out_dir` for the caller to
    delete. `min_rows` > 0 also fails an import with fewer rows (e.g. 1000 for Interactions). `progress`,
    when given, is called after each parsed block (see the module docstring); what it raises ends the import.
    """
    dataset_type = normalize_dataset_type(dataset_type)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = part_writer(out_dir, schema, rows_per_file)
    skippable = skippable_fields(schema, dataset_type)
    result = ImportResult(rows=0, files=[], bytes_read=0)
    try:
        for source in sources:
            _import_source(source, schema, writer, max_errors, skippable, result, progress)
    except BaseException:
        writer.abort()
        raise
    result.files = writer.close()
    if result.rows < min_rows:
        raise CsvImportError(
            f"The import has {result.rows} records; a {dataset_type} import needs at least {min_rows}.")
    return result


def part_writer(out_dir: Path, schema: Schema, rows_per_file: int) -> PartWriter:
    """The writer of an import's part-NNNNN.parquet files (the one Parquet layout every import has)."""
    dictionary_columns = [f.name for f in schema.fields if f.categorical or f.name == "EVENT_TYPE"]
    return PartWriter(out_dir, arrow_schema(schema), rows_per_file, dictionary_columns)


def skippable_fields(schema: Schema, dataset_type: str) -> frozenset[str]:
    """Non-nullable fields whose empty cell skips the row instead of failing the import."""
    id_field = ENTITY_ID_FIELDS.get(dataset_type)
    if id_field is None:
        return frozenset()
    return frozenset(f.name for f in schema.fields if not f.nullable and f.name != id_field)


class _CountingStream(io.RawIOBase):
    """Counts the bytes read from a source stream (the number reported as bytes_read)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


def _import_source(source: CsvSource, schema: Schema, writer: PartWriter, max_errors: int,
                   skippable: frozenset[str], result: ImportResult, progress: ImportProgress | None) -> None:
    try:
        _read_source(source, schema, writer, max_errors, skippable, result, progress)
    except OSError as exc:  # network or disk failures mid-stream, corrupt gzip data
        if source.compression:
            raise CsvImportError(f"Cannot read {source.name} as {source.compression} data: {exc}") from None
        raise DataLocationError(f"Cannot read {source.name}: {exc}") from None


def _read_source(source: CsvSource, schema: Schema, writer: PartWriter, max_errors: int,
                 skippable: frozenset[str], result: ImportResult, progress: ImportProgress | None) -> None:
    rows_before, bytes_before = result.rows + result.skipped, result.bytes_read  # earlier files
    counting = _CountingStream(source.open())
    stream: pa.NativeFile = pa.PythonFile(counting, mode="r")
    if source.compression:
        stream = pa.CompressedInputStream(stream, source.compression)
    problems: list[tuple[int, str, str]] = []  # (record index in file, column, message)
    skipped: list[tuple[int, str]] = []  # (record index in file, field) of the first skipped rows
    rows = kept = 0
    try:
        try:
            reader = pcsv.open_csv(
                stream,
                read_options=pcsv.ReadOptions(block_size=BLOCK_SIZE),
                parse_options=pcsv.ParseOptions(newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(
                    column_types={f.name: pa.string() for f in schema.fields},
                    null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True),
            )
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):
                raise _empty_file(source) from None
            raise _parse_failure(source, exc) from None
        header = reader.schema.names
        present = check_header(source, schema, header)
        note_unnamed_columns(source, header, result)
        batches = iter(reader)
        while len(problems) < max_errors:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise _parse_failure(source, exc) from None
            checked = check_batch(batch, schema, present, skippable, max_errors - len(problems),
                                  MAX_SKIP_EXAMPLES - len(skipped))
            problems.extend((rows + row, column, message) for row, column, message in checked.problems)
            skipped.extend((rows + row, column) for row, column in checked.skipped)
            if checked.out is not None and not problems:
                writer.write(checked.out)
                kept += checked.out.num_rows
            rows += batch.num_rows
            if progress is not None:
                progress(rows_before + rows, bytes_before + counting.count)
    finally:
        stream.close()
    if problems:
        raise problems_failure(source, schema, problems, max_errors)
    result.rows += kept
    result.bytes_read += counting.count
    result.skipped += rows - kept
    add_skipped_examples(source, skipped, result)


@dataclass
class CheckedBatch:
    """One parsed batch checked against the schema (`check_batch`)."""

    out: pa.RecordBatch | None  # the typed rows kept, None when the batch has a problem
    problems: list[tuple[int, str, str]]  # (row in the batch, column, message)
    skipped: list[tuple[int, str]]  # (row in the batch, field) of the first rows left out


def check_batch(batch: pa.RecordBatch, schema: Schema, present: dict[str, int], skippable: frozenset[str],
                limit: int, skip_examples: int) -> CheckedBatch:
    """Validate and convert one batch of string cells (null = empty), the columns at `present`'s positions.

    At most `limit` problems and `skip_examples` skipped rows are named. Used by `import_csv` and, on each
    executor, by the Spark import (tastemaker.spark.imports), so both apply the same rules and messages.
    """
    target = arrow_schema(schema)
    problems: list[tuple[int, str, str]] = []
    skipped: list[tuple[int, str]] = []
    columns = []
    skip: pa.Array | None = None  # rows of this batch left out (empty cell in a skippable field)
    for f in schema.fields:
        if f.name not in present:
            columns.append(pa.nulls(batch.num_rows, target.field(f.name).type))
            continue
        cells = batch.column(present[f.name])
        if f.name in skippable and cells.null_count:
            empty = pc.is_null(cells)
            for row in _first_true(pc.and_not(empty, skip) if skip is not None else empty,
                                   skip_examples - len(skipped)):
                skipped.append((row, f.name))
            skip = empty if skip is None else pc.or_(skip, empty)
            f = replace(f, nullable=True)
        converted, found = convert_column(cells, f, limit - len(problems))
        problems.extend((row, f.name, message) for row, message in found)
        columns.append(converted)
    if problems:
        return CheckedBatch(None, problems, skipped)
    out = pa.RecordBatch.from_arrays(columns, schema=target)
    if skip is not None:
        out = out.filter(pc.invert(skip))
    return CheckedBatch(out, problems, skipped)


def problems_failure(source: CsvSource, schema: Schema, problems: list[tuple[int, str, str]],
                     max_errors: int) -> CsvImportError:
    """The import's failure for problems found in `source`: (record index in the file, column, message)."""
    problems = sorted(problems, key=lambda p: (p[0], schema.field_names.index(p[1])))
    lines = record_lines(source, [p[0] for p in problems[:max_errors]])
    reasons = [f"Invalid data in {source.name} line {lines[record]}, column {column}: {message}"
               for record, column, message in problems[:max_errors]]
    if len(problems) >= max_errors:
        reasons.append(f"Import stopped after {max_errors} problems.")
    return CsvImportError(" ".join(reasons))


def add_skipped_examples(source: CsvSource, skipped: list[tuple[int, str]], result: ImportResult) -> None:
    """Name the first skipped rows of `source` (record index in the file, field) in `result`, with their lines."""
    if skipped and len(result.skipped_examples) < MAX_SKIP_EXAMPLES:
        skipped = sorted(skipped)
        lines = record_lines(source, [record for record, _ in skipped])
        result.skipped_examples += [
            f"{source.name} line {lines[record]}: empty value in {name}, which is not nullable; row skipped."
            for record, name in skipped][:MAX_SKIP_EXAMPLES - len(result.skipped_examples)]


def _empty_file(source: CsvSource) -> CsvImportError:
    return CsvImportError(f"{source.name} is empty; the first line must be a header naming the schema fields.")


def read_header(source: CsvSource) -> list[str]:
    """The header of `source` (its first non-blank record) without reading further, for a reader that parses
    the data elsewhere (tastemaker.spark.imports); raises the local path's error for an empty file."""
    for _record, _line, cells in _scan_records(source, with_header=True):
        return cells
    raise _empty_file(source)


def note_unnamed_columns(source: CsvSource, header: list[str], result: ImportResult) -> None:
    """Record the header's columns with an empty name, which the import ignores (see the module docstring)."""
    unnamed = [index + 1 for index, name in enumerate(header) if not name.strip()]
    if unnamed:
        result.ignored_columns.append(
            f"{source.name}: column {', '.join(map(str, unnamed))} has an empty name in the header and was ignored "
            "(pandas' DataFrame.to_csv writes its index that way; write with index=False to leave it out).")


def check_header(source: CsvSource, schema: Schema, header: list[str]) -> dict[str, int]:
    """Map field name -> column position; raise for repeated, unknown or missing required columns."""
    repeated = sorted({name for name in header if name.strip() and header.count(name) > 1})
    if repeated:
        raise CsvImportError(f"Input CSV {source.name} repeats column(s) in its header: [{', '.join(repeated)}].")
    known = set(schema.field_names)
    unknown = [name for name in header if name.strip() and name not in known]  # unnamed columns are ignored
    if unknown:
        by_upper = {n.strip().upper(): n for n in known}
        hints = [f"{name!r} -> {by_upper[name.strip().upper()]}" for name in unknown
                 if name.strip().upper() in by_upper]
        hint = f" Did you mean: {', '.join(hints)}? Column names are case-sensitive." if hints else ""
        raise CsvImportError(
            f"Input CSV {source.name} has columns that are not in the schema: [{', '.join(unknown)}]. "
            f"Schema fields: [{', '.join(schema.field_names)}].{hint}")
    missing = [f.name for f in schema.fields if not f.nullable and f.name not in header]
    if missing:
        raise CsvImportError(
            f"Input CSV is missing the following columns: [{', '.join(missing)}]. File: {source.name}; "
            f"header: [{', '.join(header)}].")
    return {name: index for index, name in enumerate(header)}


# ---------------------------------------------------------------------------------------------------
# Error path: map record numbers to physical lines, and locate parse errors


def _scan_records(source: CsvSource, with_header: bool = False) -> Iterator[tuple[int, int, list[str]]]:
    """Yield (record index, first physical line, cells) for every data record; the header is record -1.

    Blank lines are skipped (as Arrow does); undecodable bytes survive as surrogates for detection.
    """
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 28))
    raw: Any = source.open()
    if source.compression == "gzip":
        raw = gzip.open(raw, "rb")  # noqa: SIM115 - closed with the text wrapper below
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        reader = csv.reader(text)
        record, previous_line = -1, 0
        for cells in reader:
            start = previous_line + 1
            previous_line = reader.line_num
            if not cells:
                continue
            if record >= 0 or with_header:
                yield record, start, cells
            record += 1
    finally:
        text.close()


def record_lines(source: CsvSource, records: list[int]) -> dict[int, int]:
    wanted = set(records)
    lines: dict[int, int] = {}
    if wanted:
        last = max(wanted)
        for record, line, _ in _scan_records(source):
            if record in wanted:
                lines[record] = line
            if record >= last:
                break
    return {r: lines.get(r, r + 2) for r in records}


def _parse_failure(source: CsvSource, exc: Exception) -> CsvImportError:
    """A CsvImportError for a CSV that Arrow cannot parse, naming the first offending line if found."""
    try:
        header_width = None
        for record, line, cells in _scan_records(source, with_header=True):
            if header_width is None:
                header_width = len(cells)
            elif len(cells) != header_width:
                return CsvImportError(
                    f"Invalid data in {source.name} line {line}: expected {header_width} columns, found "
                    f"{len(cells)}. Quote values that contain commas.")
            if any(_has_undecodable(cell) for cell in cells):
                return CsvImportError(f"Invalid data in {source.name} line {line}: the text is not valid UTF-8.")
    except csv.Error as csv_exc:
        return CsvImportError(f"Cannot parse {source.name} as CSV: {csv_exc}.")
    message = str(exc).replace("\n", " ")
    return CsvImportError(f"Cannot parse {source.name} as CSV: {message[:300]}")


def _has_undecodable(cell: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in cell) if not cell.isascii() else False


# ---------------------------------------------------------------------------------------------------
# Output


class PartWriter:
    """Writes record batches to part-NNNNN.parquet files of at most `rows_per_file` rows, on a thread."""

    def __init__(self, out_dir: Path, schema: pa.Schema, rows_per_file: int, dictionary_columns: list[str]) -> None:
        self.out_dir, self.schema, self.rows_per_file = out_dir, schema, max(1, rows_per_file)
        self.dictionary_columns = dictionary_columns
        self.files: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_file = 0
        self._queue: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="parquet-writer", daemon=True)
        self._thread.start()

    def write(self, batch: pa.RecordBatch) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(batch)

    def close(self) -> list[Path]:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        if not self.files:  # an import of zero rows still leaves one (empty) part with the schema
            self._open_next()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return list(self.files)

    def abort(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain so the producer never blocks
            try:
                self._write(batch)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the producer
                self._error = exc

    def _write(self, batch: pa.RecordBatch) -> None:
        offset = 0
        while offset < batch.num_rows:
            if self._writer is None or self._rows_in_file >= self.rows_per_file:
                self._open_next()
            assert self._writer is not None
            take = min(batch.num_rows - offset, self.rows_per_file - self._rows_in_file)
            self._writer.write_batch(batch.slice(offset, take))
            self._rows_in_file += take
            offset += take

    def _open_next(self) -> None:
        if self._writer is not None:
            self._writer.close()
        path = self.out_dir / f"part-{len(self.files):05d}.parquet"
        self._writer = pq.ParquetWriter(path, self.schema, use_dictionary=self.dictionary_columns,
                                        **PARQUET_OPTIONS)
        self.files.append(path)
        self._rows_in_file = 0

