"""Job tasks that deploy campaigns: load and check the model, then switch the campaign to it."""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

from tastemaker.errors import JobFailed
from tastemaker.services import Services
from tastemaker.store import queue, resources
from tastemaker.store.queue import Job
from tastemaker.store.records import Campaign, SolutionVersion
from tastemaker.store.status import Status

log = logging.getLogger("tastemaker.serving")
CHECKED_PREFIXES = 256  # model prefixes a jobs-only process remembers as loaded and checked
# per process (per Services' serving caches): model prefix -> the stats its preload returned
_CHECKED: weakref.WeakKeyDictionary[Any, dict[str, dict[str, Any]]] = weakref.WeakKeyDictionary()


def preload(services: Services, version_arn: str) -> dict[str, Any]:
    """Load and check the version's model (see preload_prefix); returns what the campaign records."""

    with services.read_engine.connect() as conn:
        version = resources.find(conn, version_arn, "solution_version")
    if version is None or version.status != Status.ACTIVE:
        raise JobFailed(f"Solution version {version_arn} is not ACTIVE any more.")
    prefix = SolutionVersion.of(version).model_prefix
    if not prefix:
        raise JobFailed(f"Solution version {version_arn} has no model artifacts.")
    return preload_prefix(services, prefix, version_arn)


def preload_prefix(services: Services, prefix: str, label: str) -> dict[str, Any]:
    """Load a model, compile its serving kernels and build its candidate index (large catalogues) before it
    serves; returns its serving memory: artifact bytes (memory-mapped once, shared by every worker process)
    and index bytes (loaded by each worker).

    A jobs-only process (the parent of `serve --workers N`, `tastemaker worker`) maps and checks the model's
    files, saves the user lookup and the index file the serving processes will map or load, and drops the model
    again; it compiles no serving kernels (it answers no requests: the serving processes compile or load their
    own). It remembers that this prefix loaded: the artifacts under a version's prefix never change, so another
    campaign on the same version (or an update back to it) is not loaded and checked again by this process."""
    from tastemaker.serving.approx import prepare_index, saved_index_bytes
    from tastemaker.serving.models import model_cache, open_model

    checked = _CHECKED.setdefault(services.serving, {})
    if not services.serves_requests and prefix in checked:
        return dict(checked[prefix])
    models = model_cache(services)
    try:
        loaded = models.get(services, prefix) if services.serves_requests else open_model(services, prefix,
                                                                                           serving=False)
    except (FileNotFoundError, ValueError) as exc:
        raise JobFailed(f"The model of {label} could not be loaded: {exc}") from exc
    # a jobs-only process would load a saved index only to drop it again
    saved = 0 if services.serves_requests else saved_index_bytes(services, loaded.model)
    stats = {"model_bytes": loaded.mapped_bytes, "model_items": int(loaded.model.n_items),
             "index_bytes": saved or prepare_index(services, loaded)}
    if not services.serves_requests:  # a jobs-only process: the index file is saved; do not hold it in memory
        services.serving.scorers.forget(prefix)
        if len(checked) >= CHECKED_PREFIXES:
            checked.pop(next(iter(checked)))
        checked[prefix] = dict(stats)
    return stats


def warm_imports(services: Services) -> bool:
    """Import every recipe module (what the first model load, or the first CreateCampaign's configuration check,
    would import: ~0.15 s of the first CreateCampaign in a fresh API process) and what the first Parquet read
    imports (the catalogue's Items read); False, doing nothing, while no
    campaign or recommender has ever been deployed here (a new installation or a test server loads on first use).
    Called at process start in a background thread, through warm_kernels."""
    with services.read_engine.connect() as conn:
        if not any(resources.count(conn, kind, (Status.ACTIVE,)) for kind in ("campaign", "recommender")):
            return False
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tastemaker.recipes import all_recipes

    all_recipes()
    # pyarrow's first Parquet read in a process imports what it converts with (pandas, where installed: ~0.2 s
    # of CPU under the GIL, measured with py-spy inside the first GetRecommendations of a worker that had not
    # read the catalogue yet); a one-row round trip in memory does it here instead.
    buffer = io.BytesIO()
    pq.write_table(pa.table({"warm": [1]}), buffer)
    pq.read_table(io.BytesIO(buffer.getvalue()))
    return True


def warm_kernels(services: Services) -> None:
    """At process start, warm_imports and, in a process that answers requests, compile (or load from numba's
    cache) the serving kernels for the array types of a memory-mapped model (read-only float32 factors and
    transitions, a float64 Gram inverse), so that the first deploy after a start waits for neither (imports
    ~0.2-1 s, cache loads ~1-2 s on a quiet machine, 10 s under load). A jobs-only process compiles nothing here:
    its deploys compile no serving kernels (preload_prefix), and a batch job compiles what it uses. The job
    runner calls this in a background thread, and so does each API worker process of `serve --workers N` (which
    has no runner): before, the first GetRecommendations on a new campaign there waited for the kernels (its
    first answer came 2.1-4.5 s after ACTIVE at load 8-9, 1.5-1.7 s with this)."""
    if warm_imports(services) and services.serves_requests:
        compile_kernels()


def compile_kernels() -> None:
    """Compile the serving kernels for a memory-mapped model's array types into numba's on-disk cache, or load
    them from it (~25 s of CPU the first time on a 2-core machine, ~1.4 s once cached). `make install` runs it,
    so that the first GetRecommendations of a new installation does not wait for the compile (warm_kernels
    does nothing at a start with no campaign)."""
    import numpy as np

    from tastemaker.recipes import kernels
    from tastemaker.serving import compiled, fused

    def mapped(values: np.ndarray) -> np.ndarray:
        values = np.ascontiguousarray(values)
        values.setflags(write=False)  # what np.load(mmap_mode="r") gives, a numba type of its own
        return values

    compiled.warm_up()
    items, factors = 4, 3
    rng = np.random.default_rng(0)
    arrays = {"item_factors": mapped(rng.random((items, factors), dtype=np.float32)),
              "trans_indptr": mapped(np.arange(items + 1, dtype=np.int64)),
              "trans_indices": mapped(np.array([1, 2, 3, 0], np.int32)), "trans_data": mapped(np.ones(items, np.float32)),
              "recent_popularity": mapped(np.ones(items, np.float32)), "cold_scores": mapped(np.ones(items, np.float32)),
              "hist_indptr": mapped(np.arange(items + 1, dtype=np.int64)),
              "hist_items": mapped(np.array([1, 2, 3, 0], np.int32))}
    kernels.warm_up(arrays["item_factors"], np.eye(factors), arrays["trans_indptr"], arrays["trans_indices"],
                    arrays["trans_data"], arrays["recent_popularity"])
    fused.warm_up(arrays, np.eye(factors))


def deploy_campaign(services: Services, job: Job, should_stop: Callable[[], bool]) -> None:
    """CREATE PENDING -> CREATE IN_PROGRESS -> ACTIVE once the model loads (each write under the job's lease)."""
    with queue.fenced(services.engine, job) as conn:
        campaign = resources.get(conn, job.resource_arn, "campaign")
        if campaign.status == Status.ACTIVE:  # an earlier claim committed it
            queue.finish(conn, job)
            return
        resources.update(conn, job.resource_arn, status=Status.CREATE_IN_PROGRESS)
    started = time.perf_counter()
    stats = preload(services, Campaign.of(campaign).solution_version_arn)
    loaded = time.perf_counter() - started
    with queue.fenced(services.engine, job) as conn:
        resources.update(conn, job.resource_arn, status=Status.ACTIVE, changes={"serving_stats": stats})
        queue.finish(conn, job)
    log.info("campaign %s serves a model of %d bytes (loaded and checked in %.3f s)", job.resource_arn,
             stats["model_bytes"], loaded)


def update_campaign(services: Services, job: Job, should_stop: Callable[[], bool]) -> None:
    """Load the new version while the old one keeps serving; then switch the campaign in one write.

    A failure is recorded on latestCampaignUpdate only: the campaign stays ACTIVE on its old version (so does a
    job interrupted too often: the runner fails the record, see TaskSpec.update_record).
    """
    with queue.fenced(services.engine, job) as conn:
        campaign = resources.get(conn, job.resource_arn, "campaign", lock=True)
        update = dict(Campaign.of(campaign).latest_campaign_update)
        if update.get("status") in (Status.ACTIVE, Status.CREATE_FAILED):  # an earlier claim committed it
            queue.finish(conn, job)
            return
        update.update(status=Status.CREATE_IN_PROGRESS, last_updated_date_time=resources.now())
        resources.update(conn, job.resource_arn, changes={"latest_campaign_update": update})
    try:
        stats = preload(services, update["solution_version_arn"])
    except JobFailed as exc:
        update.update(status=Status.CREATE_FAILED, failure_reason=exc.reason, last_updated_date_time=resources.now())
        with queue.fenced(services.engine, job) as conn:
            resources.update(conn, job.resource_arn, changes={"latest_campaign_update": update})
            queue.finish(conn, job)
        return
    update.update(status=Status.ACTIVE, last_updated_date_time=resources.now())
    changes = {"solution_version_arn": update["solution_version_arn"],
               "min_provisioned_tps": update["min_provisioned_tps"], "campaign_config": update["campaign_config"],
               "follows_solution_arn": update.get("follows_solution_arn"), "latest_campaign_update": update,
               "serving_stats": stats}
    with queue.fenced(services.engine, job) as conn:
        current = resources.get(conn, job.resource_arn, "campaign", lock=True)
        # an update of a CREATE FAILED campaign makes it ACTIVE on the new version
        resources.update(conn, job.resource_arn, status=Status.ACTIVE if current.status == Status.CREATE_FAILED else None,
                         changes=changes, remove=("failure_reason",) if current.status == Status.CREATE_FAILED else ())
        queue.finish(conn, job)
