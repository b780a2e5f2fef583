"""Batch segment jobs: the users most likely to interact with an item or with items of given attributes.

Input lines are `{"itemId": "..."}` (aws-item-affinity, at most 500 per file) or `{"itemAttributes":
"ITEMS.GENRES = \\"Comedy\\" AND ITEMS.PRICE = \\"5\\""}` (aws-item-attribute-affinity, `=` and `AND` only, at most
10 per file). The affinity model scores every trained user for a block of queries at once (a bounded
(queries, users) float32 block of about SCORE_BYTES; the model's per-call set-up is paid once per block), and each segment is the `numResults` best users, best first (ties: lower model row
first). A job filter on users (`INCLUDE|EXCLUDE UserID WHERE Users.<FIELD> ...`) drops the users it excludes
before ranking. Output lines are written and published like batch inference outputs (tastemaker.data.jsonl),
with the same lease fencing (tastemaker.serving.batch): an owner that lost the job publishes nothing.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from tastemaker.data.jsonl import (
    TOO_LONG,
    OutputFile,
    check_input_limits,
    file_name,
    input_files,
    read_lines,
    remove_temporaries,
)
from tastemaker.data.sources import CsvSource, DataLocationError
from tastemaker.errors import JobFailed, JobStopped
from tastemaker.jobs.lease import job_temp_dir
from tastemaker.monitoring.progress import JobProgress
from tastemaker.recipes import load_model
from tastemaker.recipes.base import TrainedModel
from tastemaker.services import Services
from tastemaker.store import queue, records, resources
from tastemaker.store.queue import Job
from tastemaker.store.records import BatchSegmentJob, Dataset, Filter, SolutionVersion
from tastemaker.store.status import Status

MAX_ITEM_QUERIES, MAX_ATTRIBUTE_QUERIES = 500, 10  # per input file
SCORE_BYTES = 256 << 20  # queries are scored together in (queries, users) float32 blocks of about this size
MIN_QUERY_CHUNK = 8
log = logging.getLogger("tastemaker.jobs")
_CONDITION = re.compile(r'^\s*ITEMS\.([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)


class QueryError(ValueError):
    """A line that cannot be answered; its text becomes the line's `error`."""


def parse_attributes(text: str) -> list[tuple[str, str]]:
    """`ITEMS.<COLUMN> = "<value>" AND ...` as (column, value) pairs (only `=` and `AND`, as Personalize)."""
    if not isinstance(text, str) or not text.strip():
        raise QueryError('itemAttributes must be a string such as ITEMS.GENRES = "Comedy".')
    pairs = []
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE):
        match = _CONDITION.match(part)
        if match is None:
            raise QueryError(f'Cannot read {part.strip()!r} in itemAttributes: write ITEMS.<COLUMN> = "<value>", '
                             'joined by AND (no other operators).')
        pairs.append((match.group(1).upper(), match.group(2).replace('\\"', '"')))
    return pairs


def load_version_model(services: Services, prefix: str, workdir: Path) -> TrainedModel:
    """A solution version's model, copied from the blob store into `workdir` and memory-mapped."""
    folder = workdir / "model"
    folder.mkdir(parents=True, exist_ok=True)
    services.blobs.get_dir(prefix, folder)
    return load_model(folder, mmap=True)


def run_batch_segment(services: Services, job: Job, should_stop: Callable[[], bool]) -> None:
    """The BATCH_SEGMENT task: CREATE IN_PROGRESS, one `.out` per input file, then ACTIVE."""
    with queue.fenced(services.engine, job) as conn:
        spec = records.load(conn, job.resource_arn, BatchSegmentJob)
        version = records.load(conn, spec.solution_version_arn, SolutionVersion)
        resources.update(conn, spec.arn, status=Status.CREATE_IN_PROGRESS)
    with services.read_engine.connect() as conn:
        user_filter = _filter_users(services, conn, spec.filter_arn)
    source, folder = spec.input_path, spec.output_path
    roots = services.settings.effective_import_roots
    try:
        files = input_files(source, import_roots=roots, s3_client_factory=services.s3_client)
        check_input_limits(source, files)
    except DataLocationError as exc:
        raise JobFailed(exc.reason) from exc
    workdir = job_temp_dir(services, "segment", job)
    remove_temporaries(folder, import_roots=roots, s3_client_factory=services.s3_client)
    started = time.time()
    progress = JobProgress(services, job, files_total=len(files))
    progress.record()
    spark: Any = None  # a tastemaker.spark.segments.SparkSegments for a model with many users
    try:
        if not version.model_prefix:
            raise JobFailed(f"Solution version {version.arn} has no trained model.")
        model = load_version_model(services, version.model_prefix, workdir)
        by_attributes = model.recipe_name == "aws-item-attribute-affinity"
        keep = None if user_filter is None else user_filter(np.asarray(model.user_ids).astype(str))
        item_index = None if by_attributes else _item_index(model)
        spark = _spark_segments(services, model, workdir, keep, int(spec.num_results))
        if spark is not None:
            log.info("batch segment job %s: %d users ranked on Spark (%s)", spec.arn, len(model.user_ids),
                     services.settings.spark_master)
        for item in files:
            queries = _read_queries(item, by_attributes)
            out = OutputFile(folder, file_name(item.name) + ".out", workdir, import_roots=roots,
                             s3_client_factory=services.s3_client)
            step = max(MIN_QUERY_CHUNK, SCORE_BYTES // (4 * max(1, len(model.user_ids))))
            try:
                for start in range(0, len(queries), step):
                    if should_stop():
                        raise JobStopped()
                    rows = _answer_guarded(model, queries[start:start + step], int(spec.num_results), keep,
                                           by_attributes, item_index, spark)
                    for row in rows:
                        out.write(row)
                    progress.add(len(rows), sum(not row.endswith(b'"error":null}') for row in rows))
                out.publish(guard=lambda: queue.fenced(services.engine, job))
                progress.file_done()
            except DataLocationError as exc:
                out.discard()
                raise JobFailed(exc.reason) from exc
            except BaseException:
                out.discard()
                raise
    finally:
        if spark is not None:
            spark.close()
        shutil.rmtree(workdir, ignore_errors=True)
    with queue.fenced(services.engine, job) as conn:  # the outcome and the job's end in one fenced write
        resources.update(conn, spec.arn, status=Status.ACTIVE, changes={
            "execution_seconds": round(time.time() - started, 3), "progress": progress.document()})
        queue.finish(conn, job)


def _answer_guarded(model: TrainedModel, queries: list[tuple[Any, Any, str | None]], num: int,
                    keep: np.ndarray | None, by_attributes: bool, item_index: dict[str, int] | None,
                    spark: Any) -> list[bytes]:
    """`_answer`, a Spark failure turned into the job's failure with the executor's error as its reason."""
    if spark is None:
        return _answer(model, queries, num, keep, by_attributes, item_index)
    from tastemaker.spark.session import failure_reason

    try:
        return _answer(model, queries, num, keep, by_attributes, item_index, spark)
    except Exception as exc:  # py4j and Spark errors share no base class
        raise JobFailed(f"Spark failed while ranking the segment's users: {failure_reason(exc)}") from exc


def _read_queries(item: CsvSource, by_attributes: bool) -> list[tuple[Any, Any, str | None]]:
    """(input value, parsed query or None, error) per line; a file over the per-file limit fails the job."""
    limit = MAX_ATTRIBUTE_QUERIES if by_attributes else MAX_ITEM_QUERIES
    out: list[tuple[Any, Any, str | None]] = []
    try:
        for line in read_lines(item):
            if len(out) >= limit:
                recipe = "aws-item-attribute-affinity" if by_attributes else "aws-item-affinity"
                raise JobFailed(f"Input file {item.name} has more than {limit} queries; {recipe} batch segment "
                                f"jobs take at most {limit} per file. Split it into several files.")
            out.append(_query(line, by_attributes))
    except DataLocationError as exc:
        raise JobFailed(exc.reason) from exc
    return out


def _query(line: str, by_attributes: bool) -> tuple[Any, Any, str | None]:
    if line == TOO_LONG:
        return None, None, "The line is longer than 1,000,000 bytes."
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return line, None, f"The line is not valid JSON: {exc}."
    key = "itemAttributes" if by_attributes else "itemId"
    if not isinstance(value, dict) or not isinstance(value.get(key), str) or not value[key]:
        return value, None, f"Each line must be a JSON object with a string {key}."
    if not by_attributes:
        return value, value[key], None
    try:
        return value, parse_attributes(value[key]), None
    except QueryError as exc:
        return value, None, str(exc)


def _answer(model: TrainedModel, queries: list[tuple[Any, Any, str | None]], num: int, keep: np.ndarray | None,
            by_attributes: bool, item_index: dict[str, int] | None = None, spark: Any = None) -> list[bytes]:
    """Output lines for a chunk of queries, in input order (ranked on Spark when `spark`, a SparkSegments)."""
    errors: list[str | None] = [q[2] for q in queries]
    runnable = [k for k, q in enumerate(queries) if q[2] is None]
    segments: dict[int, list[str]] = {}
    if runnable:
        if by_attributes:
            item_sets = [model.items_matching(queries[k][1]) for k in runnable]  # type: ignore[attr-defined]
            for k, items in zip(runnable, item_sets, strict=True):
                if len(items) == 0:
                    errors[k] = f"No item of the training data matches {queries[k][0]['itemAttributes']}."
            asked: Any = [queries[k][1] for k in runnable]
        else:
            lookup = item_index if item_index is not None else _item_index(model)
            positions = np.asarray([lookup.get(queries[k][1], -1) for k in runnable], dtype=np.int64)
            for k, pos in zip(runnable, positions.tolist(), strict=True):
                if pos < 0:
                    errors[k] = f"Item {queries[k][1]} was not in the training data of this solution version."
            asked = positions
        if spark is not None:
            tops = spark.top(by_attributes, asked)
        else:
            tops = [rows for rows, _ in rank_users(model, by_attributes, asked, num, keep)]
        users = np.asarray(model.user_ids)
        for row, k in enumerate(runnable):
            if errors[k] is None:
                segments[k] = users[tops[row]].astype(str).tolist()
    out = []
    for k, (value, _parsed, _error) in enumerate(queries):
        output = {"recommendedUsers": segments[k]} if k in segments else None
        if by_attributes and isinstance(value, dict) and "itemAttributes" in value:
            record: dict[str, Any] = {"itemAttributes": value["itemAttributes"], "output": output,
                                      "error": errors[k]}
        else:
            record = {"input": value, "output": output, "error": errors[k]}
        out.append(orjson.dumps(record))
    return out


def rank_users(model: TrainedModel, by_attributes: bool, asked: Any, num: int, keep: np.ndarray | None,
               users: slice = slice(None)) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per query (item positions, or attribute queries): the model rows of its `num` best users among the rows
    `users` (all by default) that `keep` lets through, best first, and their scores. Spark's executors run it
    on their range of users (tastemaker.spark.segments)."""
    if by_attributes:
        scores = model.score_users_for_attributes(asked, users=users)
    else:
        scores = model.score_users_for_items(asked, users=users)
    start = range(len(model.user_ids))[users].start
    part_keep = None if keep is None else keep[users]
    out = []
    for row in scores:
        picked = top_users(row, num, part_keep)
        out.append((picked + start, row[picked]))
    return out


def _spark_segments(services: Services, model: TrainedModel, workdir: Path, keep: np.ndarray | None,
                    num: int) -> Any:
    """A tastemaker.spark.segments.SparkSegments when a Spark master is set and the model has at least
    `spark_min_segment_users` users, else None (in-process)."""
    settings = services.settings
    if not settings.spark_master or len(model.user_ids) < settings.spark_min_segment_users:
        return None
    from tastemaker.spark.segments import SparkSegments
    from tastemaker.spark.session import SparkUnavailable, spark_session

    try:
        session = spark_session(settings.spark_master)
    except SparkUnavailable as exc:
        raise JobFailed(str(exc)) from exc
    return SparkSegments(session, workdir / "model", len(model.user_ids), keep, num, rank_users)


def _item_index(model: TrainedModel) -> dict[str, int]:
    """Item id -> the model's item row."""
    return {str(item): row for row, item in enumerate(np.asarray(model.item_ids).tolist())}


def top_users(scores: np.ndarray, num: int, keep: np.ndarray | None) -> np.ndarray:
    """Model rows of the `num` best users (ties: lower row first), only among `keep` when given."""
    rows = np.flatnonzero(keep) if keep is not None else None
    pool = scores if rows is None else scores[rows]
    k = min(num, pool.shape[0])
    if k <= 0:
        return np.zeros(0, np.int64)
    negated = -pool
    if k < pool.shape[0]:
        # argpartition picks any of the users tied with the k-th score; take the lowest rows among them, so the
        # segment is the same however the users were split (tastemaker.spark.segments merges ranges' tops).
        cut = negated[np.argpartition(negated, k - 1)[k - 1]]
        better = np.flatnonzero(negated < cut)
        part = np.concatenate([better, np.flatnonzero(negated == cut)[:k - len(better)]])
    else:
        part = np.arange(pool.shape[0])
    picked = part[np.lexsort((part, negated[part]))]
    return picked if rows is None else rows[picked]


def _filter_users(services: Services, conn: Any,
                  filter_arn: str | None) -> Callable[[np.ndarray], np.ndarray] | None:
    """A function giving, for model user ids, whether the job's user filter lets each through (None: no
    filter). The filter is evaluated over the Users dataset; a user the dataset lacks passes an EXCLUDE-only
    filter and fails one with an INCLUDE expression (its conditions cannot hold for a user with no row)."""
    if not filter_arn:
        return None
    from tastemaker.control.datasets import dataset_of_type
    from tastemaker.control.filters import check_expression
    from tastemaker.control.schemas import load_schema
    from tastemaker.data.tables import read_dataset
    from tastemaker.errors import InvalidInputException
    from tastemaker.filters import FilterCatalog, FilterRequest, compile_filter
    from tastemaker.store.dataset_parts import part_keys

    found = records.load(conn, filter_arn, Filter)
    group = found.resource.dataset_group_arn or ""
    expression = found.filter_expression
    users_ds = dataset_of_type(conn, group, "Users")
    if users_ds is None:
        raise JobFailed(f"Filter {filter_arn} needs the dataset group's Users dataset, which does not exist.")
    _res, schema = load_schema(conn, Dataset.of(users_ds).schema_arn)
    parts = [services.blobs.local_path(key) for key in part_keys(conn, users_ds.arn)]
    table = read_dataset(parts, schema, "Users")
    ids = np.asarray(table.column("USER_ID").to_pylist(), dtype=str)
    try:
        checked = check_expression(conn, group, expression)
        compiled = compile_filter(checked, FilterCatalog(np.zeros(0, dtype=str), None, user_ids=ids, users=table))
        mask = compiled.user_mask(FilterRequest(values={}))
    except InvalidInputException as exc:
        raise JobFailed(f"Filter {filter_arn} cannot be applied to the segments: {exc}") from exc
    outsiders_pass = "include" not in expression.lower().split()

    def keep(user_ids: np.ndarray) -> np.ndarray:
        order = np.argsort(ids)
        where = np.minimum(np.searchsorted(ids[order], user_ids), max(len(ids) - 1, 0))
        known = (ids[order][where] == user_ids) if len(ids) else np.zeros(len(user_ids), bool)
        allowed = mask[order][where] if len(ids) else np.zeros(len(user_ids), bool)
        return np.where(known, allowed, outsiders_pass)

    return keep
