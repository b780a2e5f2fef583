"""Batch inference jobs: every JSON Lines input line answered with the serving layer's own pipeline.

The task builds the serving view of the solution version (a `Deployment` with the job's exploration and
rankingInfluence settings) and answers each line with `engine.recommend` / `engine.rank`, so a line equals
GetRecommendations / GetPersonalizedRanking on a campaign of the same version (exploration off). Lines are
read as a stream, CHUNK at a time, and written to a local temporary file that is published as
`<input-file-name>.out` when the file is done (tastemaker.data.jsonl): memory is bounded by the chunk and
the model, never by the input. Every write of the job is fenced by its lease (docs/architecture.md): the
status and progress writes (tastemaker.monitoring.progress) are `queue.fenced` transactions, the move of each
`.out` to its name runs inside one, and ACTIVE is written with the job's end; an owner that lost the job (frozen, then woken) publishes
nothing and its temporary copy is removed. A retried job overwrites the same names.

Plain USER_PERSONALIZATION lines (no filter, no exploration, no rankingInfluence) take a vectorised path:
a chunk's users are scored in blocks, one `score_users` call per block, and ranked with the same top-k and
softmax rules as `engine.recommend` (tastemaker.serving.topk), which is what makes a million-user job fast.
Any other line goes through `engine.recommend` itself. Large ALS catalogues served through an approximate
index answer GetRecommendations from candidates; the batch path always scores exactly.

With a Spark master configured (tastemaker.spark), files are read SPARK_CHUNK lines at a time and a chunk
with at least `spark_min_lines` plain lines has them scored on Spark (tastemaker.spark.batch: the model
broadcast, the blocks in partitions, the same score_users and top-k there); every other line, the reading and
the writing stay here. The `.out` files are the same bytes either way, with or without Spark, whichever
process runs the job: a matrix product's last bits depend on the block of rows it is computed in (OpenBLAS
takes other kernels for a block's edge rows) and on its thread count, so the blocks are a function of the
file alone (`score_blocks`: the plain lines of each CHUNK-line window of the file, `step` at a time, SPARK_CHUNK
being a multiple of CHUNK) and every scoring process multiplies with one BLAS thread (`tastemaker serve` and
`tastemaker worker` set it process-wide, Spark's Python workers per task). A Spark failure fails the job with
Spark's own error as its reason.

A bad line (not JSON, a missing userId / itemId / itemList, an unknown filter parameter) gets an `error`
and `"output": null`; it never fails the job. A file that cannot be read fails the job with a reason.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
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
from tastemaker.data.sources import DataLocationError
from tastemaker.errors import InvalidInputException, JobFailed, JobStopped, TastemakerError
from tastemaker.monitoring.progress import JobProgress
from tastemaker.recipes import kernels
from tastemaker.services import Services
from tastemaker.serving.catalog import ServingCatalog
from tastemaker.serving.deployments import Deployment
from tastemaker.serving.engine import Query, catalog_for, rank, recommend
from tastemaker.serving.history import has_tracker, streamed_events
from tastemaker.serving.models import LoadedModel, model_cache
from tastemaker.serving.topk import top_k
from tastemaker.store import queue, records, resources
from tastemaker.store.queue import Job
from tastemaker.store.records import BatchInferenceJob, SolutionVersion
from tastemaker.store.status import Status

log = logging.getLogger("tastemaker.batch")

CHUNK = 1024  # lines read, scored and written together
SPARK_CHUNK = 196 * CHUNK  # the same with a Spark master (200,704): one Spark job per chunk amortises its start
SCORE_BYTES = 8 << 20  # the vectorised path scores this many bytes of scores at once (cache-sized blocks are fastest)
MAX_RECORDS_PER_FILE, MAX_RECORDS_WITH_THEMES = 50_000_000, 100  # Personalize's limits per input file


def deployment_for(version: SolutionVersion, config: dict[str, Any]) -> Deployment:
    """The serving view of a solution version for a batch job (scores as a campaign gives them)."""
    recipe = version.recipe_name
    serving_config: dict[str, Any] = {}
    if config.get("item_exploration_config"):
        serving_config["item_exploration_config"] = dict(config["item_exploration_config"])
    if config.get("ranking_influence"):
        serving_config["ranking_influence"] = dict(config["ranking_influence"])
    from tastemaker.recipes import get_recipe

    return Deployment(version.arn, "campaign", Status.ACTIVE, version.resource.dataset_group_arn or "",
                      version.model_prefix, recipe, get_recipe(recipe).recipe_type, serving_config,
                      None, version.arn)


def run_batch_inference(services: Services, job: Job, should_stop: Callable[[], bool]) -> None:
    """The BATCH_INFERENCE task: CREATE IN_PROGRESS, one `.out` per input file, then ACTIVE."""
    with queue.fenced(services.engine, job) as conn:
        spec = records.load(conn, job.resource_arn, BatchInferenceJob)
        version = records.load(conn, spec.solution_version_arn, SolutionVersion)
        resources.update(conn, spec.arn, status=Status.CREATE_IN_PROGRESS)
    dep = deployment_for(version, spec.batch_inference_job_config)
    if not dep.model_prefix:
        raise JobFailed(f"Solution version {version.arn} has no trained model.")
    source, folder = spec.input_path, spec.output_path
    roots = services.settings.effective_import_roots
    try:
        files = input_files(source, import_roots=roots, s3_client_factory=services.s3_client)
        check_input_limits(source, files)
    except DataLocationError as exc:
        raise JobFailed(exc.reason) from exc
    loaded = model_cache(services).get(services, dep.model_prefix)
    answer = LineAnswerer(services, dep, loaded, spec)
    progress = JobProgress(services, job, files_total=len(files))
    progress.record()
    workdir = job_workdir(services, "batch", job)
    remove_temporaries(folder, import_roots=roots, s3_client_factory=services.s3_client)
    started = time.time()
    record_limit = MAX_RECORDS_WITH_THEMES if answer.theme_column else MAX_RECORDS_PER_FILE
    chunk_size = SPARK_CHUNK if services.settings.spark_master and answer.fast else CHUNK
    try:
        for item in files:
            out = OutputFile(folder, file_name(item.name) + ".out", workdir, import_roots=roots,
                             s3_client_factory=services.s3_client)
            try:
                for chunk in _chunks(read_lines(item), chunk_size):
                    if should_stop():
                        raise JobStopped()
                    if out.lines + len(chunk) > record_limit:
                        raise JobFailed(f"Input file {item.name} has more than {record_limit:,} records, the "
                                        "limit per file of a batch inference job; split it into several files.")
                    rows = answer.chunk(chunk)
                    errors = 0
                    for row in rows:
                        out.write(row)
                        errors += not row.endswith(b'"error":null}')
                    progress.add(len(rows), errors)
                out.publish(guard=lambda: queue.fenced(services.engine, job))
                progress.file_done()
            except DataLocationError as exc:
                out.discard()
                raise JobFailed(exc.reason) from exc
            except BaseException:
                out.discard()
                raise
    finally:
        answer.close()
        shutil.rmtree(workdir, ignore_errors=True)
    with queue.fenced(services.engine, job) as conn:  # the outcome and the job's end in one fenced write
        resources.update(conn, spec.arn, status=Status.ACTIVE, changes={
            "execution_seconds": round(time.time() - started, 3), "progress": progress.document()})
        queue.finish(conn, job)


def _chunks(lines: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def job_workdir(services: Services, what: str, job: Job) -> Path:
    """A temp folder of this claim of the job, named as tastemaker.jobs.lease names them (`tm-<what>-j<id>.<lease>-`)
    so the job runner sweeps it once the claim is over (its owner was killed)."""
    root = services.settings.data_dir / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"tm-{what}-j{job.id}.{job.lease}-", dir=root))


class LineAnswerer:
    """Turns input lines into output lines for one job."""

    def __init__(self, services: Services, dep: Deployment, loaded: LoadedModel, spec: BatchInferenceJob) -> None:
        self.services = services
        self.dep = dep
        self.loaded = loaded
        self.num = int(spec.num_results)
        self.filter_arn = spec.filter_arn
        self.theme_column = ((spec.theme_generation_config.get("fields_for_theme_generation") or {})
                             .get("item_name")) if spec.batch_inference_job_mode == "THEME_GENERATION" else None
        self.catalog: ServingCatalog = catalog_for(services, dep, loaded)
        self.fast = (dep.recipe_type == "USER_PERSONALIZATION" and not self.filter_arn
                     and not dep.config.get("item_exploration_config") and not dep.config.get("ranking_influence"))
        self.spark: Any = None  # a tastemaker.spark.batch.SparkScorer once a chunk goes to Spark

    def close(self) -> None:
        if self.spark is not None:
            self.spark.close()
            self.spark = None

    def chunk(self, lines: list[str]) -> list[bytes]:
        parsed: list[tuple[Any, str | None]] = [_parse(line) for line in lines]
        out: list[bytes | None] = [None] * len(lines)
        plain: list[int] = []
        for k, (value, error) in enumerate(parsed):
            if error is not None:
                out[k] = _line(value, None, error)
            elif self.fast and set(value) == {"userId"} and isinstance(value["userId"], str) and value["userId"]:
                plain.append(k)
            else:
                out[k] = self.one(value)
        if plain:
            for k, result in zip(plain, self.users([parsed[k][0]["userId"] for k in plain], plain), strict=True):
                out[k] = _line(parsed[k][0], result, None)
        return [row for row in out if row is not None]

    def one(self, value: dict[str, Any]) -> bytes:
        """A line through engine.recommend / engine.rank (errors become the line's `error`)."""
        try:
            output = self._answer(value)
        except (TastemakerError, ValueError, TypeError) as exc:
            return _line(value, None, str(exc))
        return _line(value, output, None)

    def _answer(self, value: dict[str, Any]) -> dict[str, Any]:
        values = value.get("filterValues")
        if values is not None and (not isinstance(values, dict)
                                   or not all(isinstance(v, str) for v in values.values())):
            raise InvalidInputException("filterValues must be an object of strings.")
        if values and not self.filter_arn:
            raise InvalidInputException("filterValues were given but the job has no filterArn.")
        user_id, item_id = value.get("userId"), value.get("itemId")
        for name, given in (("userId", user_id), ("itemId", item_id)):
            if given is not None and not isinstance(given, str):
                raise InvalidInputException(f"{name} must be a string.")
        if self.dep.recipe_type == "PERSONALIZED_RANKING":
            items = value.get("itemList")
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise InvalidInputException("itemList (a list of item ids) is required for PERSONALIZED_RANKING.")
            if not user_id:
                raise InvalidInputException("userId is required for PERSONALIZED_RANKING recipes.")
            ranked = rank(self.services, self.dep, Query(user_id=user_id, filter_arn=self.filter_arn,
                                                          filter_values=values or None, input_list=items))
            entries = ranked["personalized_ranking"]
            return {"recommendedItems": [e["item_id"] for e in entries],
                    "scores": [e.get("score") for e in entries]}
        if self.dep.recipe_type == "POPULAR_ITEMS":
            item_id = None  # Popularity-Count answers every line with the same list
        found = recommend(self.services, self.dep, Query(user_id=user_id or None, item_id=item_id or None,
                                                         num_results=self.num, filter_arn=self.filter_arn,
                                                         filter_values=values or None))
        entries = found["item_list"]
        output: dict[str, Any] = {"recommendedItems": [e["item_id"] for e in entries]}
        if entries and "score" in entries[0]:
            output["scores"] = [e["score"] for e in entries]
        if self.theme_column:
            output.update(self._theme(item_id or "", output["recommendedItems"]))
        return output

    def users(self, user_ids: list[str], lines: list[int]) -> Iterator[dict[str, Any]]:
        """The vectorised USER_PERSONALIZATION path: same scores, top-k and softmax as engine.recommend.
        `lines` are the users' line numbers in the chunk (they choose the blocks: score_blocks)."""
        model, catalog = self.loaded.model, self.catalog
        blocks = score_blocks(lines, score_step(catalog.n_model))
        streamed = has_tracker(self.services, self.dep.group_arn)
        settings = self.services.settings
        if settings.spark_master and len(user_ids) >= settings.spark_min_lines:
            queries = [(self.loaded.user_position(u), self._history(u) if streamed else np.zeros(0, np.int32))
                       for u in user_ids]
            for picked, values in self._score_on_spark(queries, blocks):
                yield {"recommendedItems": catalog.item_ids[picked].tolist(), "scores": np.round(values, 7).tolist()}
            log.info("%d lines scored on Spark (%s)", len(user_ids), settings.spark_master)
            return
        for start, end in blocks:
            ids = user_ids[start:end]
            rows = np.asarray([self.loaded.user_position(u) for u in ids], dtype=np.int64)
            histories = [self._history(u) if streamed else np.zeros(0, np.int32) for u in ids]
            scores = np.asarray(model.score_users(rows, histories))
            picked, values = top_with_softmax(scores, self.num)
            names = catalog.item_ids[picked]
            rounded = np.round(values, 7)
            for r in range(len(ids)):
                yield {"recommendedItems": names[r].tolist(), "scores": rounded[r].tolist()}

    def _score_on_spark(self, queries: list[tuple[int, np.ndarray]],
                        blocks: list[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        from tastemaker.spark.batch import SparkScorer
        from tastemaker.spark.session import SparkUnavailable, failure_reason, spark_session

        try:
            if self.spark is None:
                session = spark_session(str(self.services.settings.spark_master))
                self.spark = SparkScorer(session, self.loaded.directory, self.num, top_with_softmax)
            return self.spark.score(queries, blocks)  # type: ignore[no-any-return]
        except SparkUnavailable as exc:
            raise JobFailed(str(exc)) from exc
        except Exception as exc:  # py4j and Spark errors share no base class
            raise JobFailed(f"Spark failed while scoring the batch: {failure_reason(exc)}") from exc

    def _history(self, user_id: str) -> np.ndarray:
        recent = streamed_events(self.services, self.dep.group_arn, user_id)
        positions = [self.catalog.index_of(i) for i in reversed(recent.item_ids)]
        return np.asarray([p for p in positions if 0 <= p < self.catalog.n_model], dtype=np.int32)

    def _theme(self, item_id: str, recommended: list[str]) -> dict[str, Any]:
        return theme_for(self.catalog, self.theme_column or "", item_id, recommended)


def score_step(n_items: int) -> int:
    """Users per block of the vectorised path: SCORE_BYTES of float32 scores over `n_items` items."""
    return max(1, SCORE_BYTES // max(1, 4 * n_items))


def score_blocks(lines: Sequence[int], step: int) -> list[tuple[int, int]]:
    """The blocks (start, end) the plain lines of a chunk are scored in, as positions in `lines` (their
    ascending line numbers in the chunk): the plain lines of each CHUNK-line window of the chunk, `step` at a
    time from the window's first. Chunks start at multiples of CHUNK in the file (CHUNK and SPARK_CHUNK
    lines), so a line's block, and with it the last bits of its scores, is the same for either chunk size
    and on Spark."""
    blocks: list[tuple[int, int]] = []
    start, count = 0, len(lines)
    while start < count:
        window_end = (lines[start] // CHUNK + 1) * CHUNK
        end = start + 1
        while end < count and end - start < step and lines[end] < window_end:
            end += 1
        blocks.append((start, end))
        start = end
    return blocks


def top_with_softmax(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the k best indices (ties: as tastemaker.serving.topk.top_k breaks them) and their softmax over
    the whole row, float64: the same float32 exponentials summed in float64 as softmax_scores with no mask.
    `scores` is overwritten.

    The whole chunk's top k is one compiled pass (tastemaker.recipes.kernels.top_k_rows); a row whose k-th
    and (k+1)-th best scores tie is answered by top_k itself, since which tied item it keeps depends on its
    selection."""
    k = min(k, scores.shape[1])
    if scores.shape[0] and 0 < k < scores.shape[1]:
        picked, tied = kernels.top_k_rows(np.ascontiguousarray(scores), k)
        for r in np.flatnonzero(tied).tolist():
            picked[r] = top_k(scores[r], k)
    else:
        picked = np.stack([top_k(row, k) for row in scores]) if scores.shape[0] else np.zeros((0, k), np.int64)
    chosen32 = np.take_along_axis(scores, picked, axis=1)
    chosen = chosen32.astype(np.float64)
    top = chosen32[:, 0] if k else scores.max(axis=1)  # the best pick is the row's maximum: no pass over the row
    np.subtract(scores, top[:, None], out=scores)
    np.exp(scores, out=scores)
    totals = scores.sum(axis=1, dtype=np.float64)
    values = np.exp(chosen - top.astype(np.float64)[:, None]) / totals[:, None]
    return picked, values


def _parse(line: str) -> tuple[Any, str | None]:
    if line == TOO_LONG:
        return None, "The line is longer than 1,000,000 bytes."
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return line, f"The line is not valid JSON: {exc}."
    if not isinstance(value, dict):
        return value, "The line must be a JSON object such as {\"userId\": \"...\"}."
    return value, None


def _line(value: Any, output: dict[str, Any] | None, error: str | None) -> bytes:
    return orjson.dumps({"input": value, "output": output, "error": error})


# --- THEME_GENERATION -------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_STOP_WORDS = """a an and are as at be but by for from has have in into is it its of on or that the their this
to was were will with without about after again all also any because been before being between both can could
did does each few more most other our out over own same she should some such than them then there these they
those through too under until very what when where which while who whom why you your"""
_STOP = frozenset(_STOP_WORDS.split())


def theme_for(catalog: ServingCatalog, name_column: str, item_id: str, recommended: list[str]) -> dict[str, Any]:
    """A theme for an item set made from the items' own text (no generative model): the three words that
    most of the set's items share in their name and textual columns (stop words dropped), phrased as
    "<Word>, <word> and <word>", with each item's relevance = the share of theme words its text holds."""
    positions = [catalog.index_of(i) for i in [item_id, *recommended]]
    texts = _item_texts(catalog, name_column, positions)
    counts: Counter[str] = Counter()
    for words in texts:
        counts.update(words)
    theme_words = [w for w, _ in counts.most_common(3)]
    if not theme_words:
        return {"theme": "", "itemsThemeRelevanceScores": [0.0] * len(recommended)}
    phrase = theme_words[0].capitalize()
    if len(theme_words) > 1:
        phrase += (", " + ", ".join(theme_words[1:-1]) if len(theme_words) > 2 else "") + " and " + theme_words[-1]
    scores = [round(len(words & set(theme_words)) / len(theme_words), 4) for words in texts[1:]]
    return {"theme": phrase, "itemsThemeRelevanceScores": scores}


def _item_texts(catalog: ServingCatalog, name_column: str, positions: list[int]) -> list[set[str]]:
    if catalog.metadata is None:
        return [set() for _ in positions]
    columns = [name_column] + [c for c in catalog.metadata.column_names
                               if c.upper() not in ("ITEM_ID", name_column.upper())
                               and str(catalog.metadata.schema.field(c).type) == "string"]
    rows = catalog.metadata_for([max(p, 0) for p in positions], columns)
    out = []
    for pos, row in zip(positions, rows, strict=True):
        text = " ".join(row.values()) if pos >= 0 else ""
        out.append({w.lower() for w in _WORD.findall(text)} - _STOP)
    return out
