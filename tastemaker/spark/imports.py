"""Dataset imports on Spark: Spark's CSV reader parses the files in blocks, the executors check every block
with the local importer's own code and write its Parquet parts straight to the blob store.

`import_on_spark` is what a dataset import job runs instead of `tastemaker.data.csv_import.import_csv` when a
Spark master is set and the files are large (tastemaker.jobs.tasks). The driver (the job's process) reads
each file's header and checks it (`check_header`: the same messages), then Spark reads the files
(`spark.read.csv`, every cell a string, splittable, one task per block of `spark.sql.files.maxPartitionBytes`)
and hands each executor its rows as Arrow batches (`mapInArrow`). The executor runs `check_batch` on them
(the local importer's validation: same conversions, same rules, same skipped rows), writes the kept rows with
the local importer's `part_writer` (same schema, dictionary columns and compression) and uploads the part
files under the claim's blob prefix; it returns, per block, its row counts, its first problems and skipped
rows (row numbers inside the block) and the keys it uploaded. The driver orders blocks by file and offset,
turns row numbers into record numbers of the file and, for a failure, into the same message as the local
path (`problems_failure`, which reads the file again to name physical lines). Parts come back in file order,
so the dataset's row order is the file's, as in-process.

Files Spark's CSV reader cannot read as the local reader does are imported in-process instead
(`SparkFallback`): a quoted value with a line break (Spark's splittable reader takes one line per row), a row
with too many or too few cells, undecodable bytes (Spark substitutes U+FFFD; an executor seeing U+FFFD reports
it); so is an import whose second or later file has a header the schema refuses (in-process names the
earlier files' data problems first, if any). In-process then either imports the files (a quoted line break
is valid CSV) or fails them with its message. One difference remains: a line of nothing but spaces, which
in-process refuses (one column where the header has several), Spark's reader skips as a blank line.

Where Spark reads from: files under the import roots by their path (on a cluster the import roots must be
mounted at the same path on every executor); `s3://` objects are streamed by the driver through the project's
S3 client into `stage_dir` first, because the pyspark wheel has no S3 filesystem (s3a needs the hadoop-aws
and AWS SDK jars). Progress: executors add the rows and bytes of each finished block to accumulators, which a
driver thread reports through `progress` about once a second (what `progress` raises cancels the Spark job).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tastemaker.data.csv_import import (
    DEFAULT_ROWS_PER_FILE,
    MAX_SKIP_EXAMPLES,
    CsvImportError,
    ImportProgress,
    ImportResult,
    add_skipped_examples,
    check_batch,
    check_header,
    note_unnamed_columns,
    part_writer,
    problems_failure,
    read_header,
    skippable_fields,
)
from tastemaker.data.schemas import Schema, normalize_dataset_type
from tastemaker.data.sources import CsvSource

ARROW_BATCH_ROWS = 1 << 20  # rows per Arrow batch handed to an executor (the local path parses ~1M a block)
_RESULT_FIELDS = [("kind", pa.string()), ("path", pa.string()), ("start", pa.int64()), ("a", pa.int64()),
                  ("b", pa.int64()), ("text", pa.string()), ("message", pa.string())]
_META = ("_tm_path", "_tm_start", "_tm_length")


class SparkFallback(Exception):
    """Spark's CSV reader cannot read these files as the local reader does: import them in-process."""


@dataclass
class SparkImport:
    """What an import on Spark produced: the local path's figures, and the parts already uploaded."""

    result: ImportResult
    parts: list[tuple[str, int]] = field(default_factory=list)  # (blob key, rows), in file order


@dataclass(frozen=True)
class _Task:
    """What every executor needs (pickled into the task): the schema, the limits and where parts go."""

    schema: Schema
    present: dict[str, int]
    skippable: frozenset[str]
    max_errors: int
    rows_per_file: int
    blob_url: str
    s3_endpoint_url: str | None
    key_prefix: str


def import_on_spark(session: Any, sources: Sequence[CsvSource], schema: Schema, dataset_type: str, *,
                    stage_dir: Path, blob_url: str, s3_endpoint_url: str | None, key_prefix: str,
                    max_errors: int = 5, rows_per_file: int = DEFAULT_ROWS_PER_FILE,
                    progress: ImportProgress | None = None) -> SparkImport:
    """Import `sources` as `import_csv` does, the reading and checking on Spark, the parts uploaded under
    `key_prefix` (the caller deletes that prefix when this raises). Raises CsvImportError with the local
    path's reason, or SparkFallback (see the module docstring)."""
    dataset_type = normalize_dataset_type(dataset_type)
    skippable = skippable_fields(schema, dataset_type)
    headers = []
    for k, source in enumerate(sources):
        try:
            header = read_header(source)
            check_header(source, schema, header)
        except CsvImportError:
            if k == 0:
                raise  # in-process fails here too, before reading any data
            # In-process reads the earlier files' data first and names their problems, if any, instead.
            raise SparkFallback(f"the header of {source.name} does not fit the schema") from None
        headers.append(header)
    paths = [_spark_path(source, stage_dir, k) for k, source in enumerate(sources)]
    index = {_normal(path): k for k, path in enumerate(paths)}
    context = session.sparkContext
    rows_read, bytes_read = context.accumulator(0), context.accumulator(0)
    frames = []
    by_header: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for header, path in zip(headers, paths, strict=True):
        by_header[tuple(header)].append(path)
    for header_key, group in by_header.items():
        task = _Task(schema, {name: i for i, name in enumerate(header_key)}, skippable, max_errors,
                     max(1, rows_per_file), blob_url, s3_endpoint_url, key_prefix)
        frames.append(_checked_frame(session, list(header_key), group, task, rows_read, bytes_read))
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionAll(other)
    rows = _collect(session, frame, progress, rows_read, bytes_read)
    imported = _assemble(rows, sources, index, schema, max_errors)
    for source, header in zip(sources, headers, strict=True):
        note_unnamed_columns(source, header, imported.result)
    return imported


def _spark_path(source: CsvSource, stage_dir: Path, k: int) -> str:
    """A path Spark can read for `source`: the local file itself, or a staged copy of an S3 object."""
    if not source.name.startswith("s3://"):
        return Path(source.name).resolve().as_uri()
    stage_dir.mkdir(parents=True, exist_ok=True)
    base = source.name.rsplit("/", 1)[-1] or "object"
    staged = stage_dir / f"{k:05d}-{base}"  # keeps `.gz`: Spark picks the codec by the name
    with source.open() as stream, open(staged, "wb") as out:
        shutil.copyfileobj(stream, out, 8 << 20)
    return staged.resolve().as_uri()


def _normal(path: str) -> str:
    return os.path.realpath(unquote(urlparse(path).path))


def _checked_frame(session: Any, header: list[str], paths: list[str], task: _Task, rows_read: Any,
                   bytes_read: Any) -> Any:
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    columns = list(header)  # checked on the driver: schema field names, each once (Spark's header check agrees)
    frame = (session.read.schema(StructType([StructField(c, StringType()) for c in columns]))
             .options(header=True, enforceSchema=True, mode="FAILFAST", multiLine=False, escape='"',
                      maxCharsPerColumn=-1, encoding="UTF-8")
             .csv(paths))
    frame = frame.select(*[F.col(f"`{c}`") for c in columns], F.col("_metadata.file_path").alias(_META[0]),
                         F.col("_metadata.file_block_start").alias(_META[1]),
                         F.col("_metadata.file_block_length").alias(_META[2]))
    out = StructType([StructField(name, LongType() if kind == pa.int64() else StringType())
                      for name, kind in _RESULT_FIELDS])

    def check(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return _check_blocks(batches, task, len(columns), rows_read, bytes_read)

    return frame.mapInArrow(check, out)


def _collect(session: Any, frame: Any, progress: ImportProgress | None, rows_read: Any, bytes_read: Any) -> list[Any]:
    """Run the job; while it runs, report the accumulators through `progress` (its error cancels the job)."""
    context = session.sparkContext
    group = f"tastemaker-import-{uuid.uuid4().hex[:12]}"
    done = threading.Event()
    failure: list[BaseException] = []

    def report() -> None:
        while not done.wait(1.0):
            try:
                if progress is not None:
                    progress(int(rows_read.value), int(bytes_read.value))
            except BaseException as exc:  # noqa: BLE001 - re-raised by the job's thread
                failure.append(exc)
                context.cancelJobGroup(group)
                return

    context.setJobGroup(group, "tastemaker dataset import", interruptOnCancel=True)
    session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
    watcher = threading.Thread(target=report, name="spark-import-progress", daemon=True)
    watcher.start()
    try:
        rows = frame.collect()
    except Exception as exc:
        if failure:
            raise failure[0] from exc
        if _unreadable(exc):
            raise SparkFallback(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
        raise
    finally:
        done.set()
        watcher.join()
        context.setLocalProperty("spark.jobGroup.id", None)
    if failure:
        raise failure[0]
    if progress is not None:
        progress(int(rows_read.value), int(bytes_read.value))
    return list(rows)


def _unreadable(exc: BaseException) -> bool:
    """Whether a Spark failure is its CSV reader refusing a row (malformed record, unreadable file)."""
    text = str(exc)
    return any(mark in text for mark in ("MALFORMED_RECORD", "Malformed", "FAILED_READ_FILE", "malformed"))


@dataclass
class _Block:
    """One block of one file on an executor: rows read and kept, first problems and skips, its writer."""

    path: str
    start: int
    length: int
    rows: int = 0
    kept: int = 0
    problems: list[tuple[int, str, str]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    suspect: bool = False
    folder: Path | None = None
    writer: Any = None


def _check_blocks(batches: Iterator[pa.RecordBatch], task: _Task, width: int, rows_read: Any,
                  bytes_read: Any) -> Iterator[pa.RecordBatch]:
    """On an executor: check the rows of each block, upload its parts, yield one result batch per block."""
    block: _Block | None = None
    for batch in batches:
        for (path, start, length), cells in _runs(batch, width):
            if block is None or (block.path, block.start) != (path, start):
                if block is not None:
                    yield _finish(block, task, rows_read, bytes_read)
                block = _Block(path, start, length)
            _feed(block, cells, task)
    if block is not None:
        yield _finish(block, task, rows_read, bytes_read)


def _runs(batch: pa.RecordBatch, width: int) -> Iterator[tuple[tuple[str, int, int], pa.RecordBatch]]:
    """The batch cut into runs of rows of one block, each as string cells of the file's columns."""
    paths, starts = batch.column(width), batch.column(width + 1)
    keys = pc.binary_join_element_wise(paths, pc.cast(starts, pa.string()), "\n")
    changes = [0] + (pc.indices_nonzero(pc.not_equal(keys[1:], keys[:-1])).to_numpy() + 1).tolist() if len(keys) else []
    bounds = [*changes, batch.num_rows]
    cells = pa.RecordBatch.from_arrays([pc.cast(batch.column(i), pa.string()) for i in range(width)],
                                       names=batch.schema.names[:width])
    lengths = batch.column(width + 2)
    for begin, end in itertools.pairwise(bounds):
        if end > begin:
            key = (paths[begin].as_py(), starts[begin].as_py(), lengths[begin].as_py())
            yield key, cells.slice(begin, end - begin)


def _feed(block: _Block, cells: pa.RecordBatch, task: _Task) -> None:
    offset = block.rows
    block.rows += cells.num_rows
    if block.suspect or len(block.problems) >= task.max_errors:
        return  # the local path stops reading a file here too
    if any(pc.any(pc.match_substring(column, "\ufffd")).as_py() for column in cells.columns):
        block.suspect = True  # Spark's substitute for undecodable bytes (or a real U+FFFD): let in-process decide
        return
    checked = check_batch(cells, task.schema, task.present, task.skippable, task.max_errors - len(block.problems),
                          MAX_SKIP_EXAMPLES - len(block.skipped))
    block.problems += [(offset + row, column, message) for row, column, message in checked.problems]
    block.skipped += [(offset + row, column) for row, column in checked.skipped]
    if checked.out is not None and not block.problems:
        if block.writer is None:
            block.folder = Path(tempfile.mkdtemp(prefix="tm-spark-import-"))
            block.writer = part_writer(block.folder, task.schema, task.rows_per_file)
        block.writer.write(checked.out)
        block.kept += checked.out.num_rows


def _finish(block: _Block, task: _Task, rows_read: Any, bytes_read: Any) -> pa.RecordBatch:
    """Close the block's writer, upload its parts when it has no problem, and describe it as result rows."""
    results: list[tuple[str, int, int, str | None, str | None]] = [("block", block.rows, block.kept, None, None)]
    try:
        if block.writer is not None:
            files: list[Path] = []
            if block.problems or block.suspect:
                block.writer.abort()
            else:
                files = block.writer.close()
            if files:
                from tastemaker.store.blobs import open_blob_store

                blobs = open_blob_store(task.blob_url, s3_endpoint_url=task.s3_endpoint_url)
                for seq, path in enumerate(files):
                    key = task.key_prefix + f"{uuid.uuid4().hex[:8]}-{path.name}"
                    blobs.put_file(key, path)
                    results.append(("part", seq, int(pq.ParquetFile(path).metadata.num_rows), key, None))
    finally:
        if block.folder is not None:
            shutil.rmtree(block.folder, ignore_errors=True)
    results += [("problem", row, 0, column, message) for row, column, message in block.problems]
    results += [("skip", row, 0, column, None) for row, column in block.skipped]
    if block.suspect:
        results.append(("suspect", 0, 0, None, None))
    rows_read.add(block.rows)
    bytes_read.add(block.length)
    n = len(results)
    return pa.RecordBatch.from_arrays(
        [pa.array([r[0] for r in results], pa.string()), pa.array([block.path] * n, pa.string()),
         pa.array([block.start] * n, pa.int64()), pa.array([r[1] for r in results], pa.int64()),
         pa.array([r[2] for r in results], pa.int64()), pa.array([r[3] for r in results], pa.string()),
         pa.array([r[4] for r in results], pa.string())],
        names=[name for name, _ in _RESULT_FIELDS])


def _assemble(rows: list[Any], sources: Sequence[CsvSource], index: dict[str, int], schema: Schema,
              max_errors: int) -> SparkImport:
    """The driver's side: blocks in file order, record numbers, the failure or the result and the parts."""
    if any(row.kind == "suspect" for row in rows):
        raise SparkFallback("a value holds U+FFFD, Spark's substitute for bytes that are not UTF-8")
    blocks: dict[int, dict[int, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        blocks[index[_normal(row.path)]][row.start].append(row)
    result = ImportResult(rows=0, files=[], bytes_read=sum(source.size or 0 for source in sources))
    parts: list[tuple[str, int]] = []
    for k, source in enumerate(sources):
        offset = 0
        problems: list[tuple[int, str, str]] = []
        skipped: list[tuple[int, str]] = []
        for start in sorted(blocks[k]):
            these = blocks[k][start]
            summary = next(row for row in these if row.kind == "block")
            problems += [(offset + row.a, row.text, row.message) for row in these if row.kind == "problem"]
            skipped += [(offset + row.a, row.text) for row in these if row.kind == "skip"]
            parts += [(row.text, int(row.b)) for row in sorted((r for r in these if r.kind == "part"),
                                                               key=lambda r: r.a)]
            result.rows += int(summary.b)
            result.skipped += int(summary.a - summary.b)
            offset += int(summary.a)
        if problems:
            raise problems_failure(source, schema, problems, max_errors)
        add_skipped_examples(source, skipped, result)
    return SparkImport(result, parts)
