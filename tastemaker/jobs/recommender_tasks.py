"""Job tasks of domain recommenders: train (create / update), stop, start, delete.

Training and start end by loading the model as serving will (`prepare`, given by the task registry: the
serving layer's check), so a recommender turns ACTIVE only with a model that loads and scores.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tastemaker.errors import JobFailed
from tastemaker.jobs.lease import job_temp_dir
from tastemaker.jobs.training import build_spec, run_trainer
from tastemaker.services import Services
from tastemaker.store import keys, queue, resources
from tastemaker.store.queue import Job
from tastemaker.store.records import Recommender
from tastemaker.store.status import Status

KIND = "recommender"
# Loads a model from its blob prefix as serving will and returns its serving memory (label names it in errors).
PrepareModel = Callable[[Services, str, str], dict[str, Any]]


def training_version(recommender: resources.Resource, config: dict[str, Any]) -> resources.Resource:
    """The recommender seen as a solution version of its use case's engine recipe (what build_spec reads)."""
    from tastemaker.recipes.catalog import RECIPE_ARN_PREFIX, domain_use_case

    use_case = domain_use_case(Recommender.of(recommender).recipe_arn)
    event_type = use_case.required_event_type or (use_case.event_types[0] if len(use_case.event_types) == 1
                                                  else None)
    solution_config: dict[str, Any] = {}
    if config.get("training_data_config"):
        solution_config["training_data_config"] = config["training_data_config"]
    body = {"dataset_group_arn": recommender.dataset_group_arn, "recipe_arn": RECIPE_ARN_PREFIX + use_case.engine_recipe,
            "event_type": event_type, "solution_config": solution_config, "training_mode": "FULL"}
    return resources.Resource(recommender.arn, KIND, recommender.status, body, recommender.dataset_group_arn,
                              recommender.parent_arn, recommender.created_at, recommender.updated_at)


def train(services: Services, job: Job, recommender: resources.Resource, config: dict[str, Any],
          should_stop: Callable[[], bool]) -> dict[str, Any]:
    """Train the use case's model with the training subprocess and store it under the recommender's prefix."""
    workdir = job_temp_dir(services, "rec", job)
    try:
        out = workdir / "out"
        out.mkdir()
        spec = build_spec(services, training_version(recommender, config), out, workdir)
        spec = replace(spec, config=replace(spec.config, domain_event_type_message=True))
        started = time.time()
        result = run_trainer(spec, workdir, should_stop)
        # Each training gets its own prefix: serving processes cache a model (and its user lookup) by prefix,
        # so overwriting one in place would keep the old model in memory. Older generations go after the
        # commit (_commit), so a writer that lost its lease never removes the generation that won.
        prefix = f"{keys.model_prefix(Recommender.of(recommender).storage_id)}t-{uuid.uuid4().hex[:12]}/"
        services.blobs.put_dir(prefix, out / "model")
        return {"model_metrics": result.get("metrics", {}), "model_prefix": prefix,
                "training_hours": round((time.time() - started) / 3600, 6)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _set(services: Services, job: Job, status: str | None = None, **changes: Any) -> resources.Resource:
    """Write the job's recommender under the job's lease (LeaseLost when another owner has the job)."""
    with queue.fenced(services.engine, job) as conn:
        return resources.update(conn, job.resource_arn, status=status, changes=changes)


def _commit(services: Services, job: Job, status: str | None = None, **changes: Any) -> None:
    """Switch the recommender to a new model generation in one fenced write; then remove the generations that
    neither it nor the one it replaced use. A writer that lost its lease removes only its own generation."""
    new = changes.get("model_prefix")
    try:
        with queue.fenced(services.engine, job) as conn:
            current = resources.get(conn, job.resource_arn, KIND)
            replaced = Recommender.of(current).model_prefix
            resources.update(conn, job.resource_arn, status=status, changes=changes)
            queue.finish(conn, job)  # with the outcome: a crash after this commit never reruns the job
    except BaseException:
        if new:
            services.blobs.delete_prefix(new)
        raise
    if new:
        root = keys.model_prefix(Recommender.of(current).storage_id)
        generations = {key[: key.index("/", len(root)) + 1] for key in services.blobs.list(root)
                       if "/" in key[len(root):]}
        for stale in generations - {new, replaced}:
            services.blobs.delete_prefix(stale)


def train_recommender(services: Services, job: Job, should_stop: Callable[[], bool], *, prepare: PrepareModel) -> None:
    """CREATE PENDING -> CREATE IN_PROGRESS -> ACTIVE with modelMetrics (CREATE FAILED names the data at fault)."""
    recommender = _set(services, job, Status.CREATE_IN_PROGRESS)
    outcome = train(services, job, recommender, Recommender.of(recommender).recommender_config, should_stop)
    outcome["serving_stats"] = prepare(services, outcome["model_prefix"], job.resource_arn)
    _commit(services, job, Status.ACTIVE, **outcome)


def update_recommender(services: Services, job: Job, should_stop: Callable[[], bool], *, prepare: PrepareModel) -> None:
    """Apply latestRecommenderUpdate; a new trainingDataConfig retrains. Failures stay on the update."""
    with services.engine.connect() as conn:
        recommender = resources.get(conn, job.resource_arn, KIND)
    update = dict(Recommender.of(recommender).latest_recommender_update)
    new_config = update.get("recommender_config") or {}
    update.update(status=Status.CREATE_IN_PROGRESS, last_updated_date_time=resources.now())
    _set(services, job, latest_recommender_update=update)
    changes: dict[str, Any] = {"recommender_config": new_config}
    old_data = Recommender.of(recommender).recommender_config.get("training_data_config")
    if new_config.get("training_data_config") != old_data:
        try:
            changes.update(train(services, job, recommender, new_config, should_stop))
            changes["serving_stats"] = prepare(services, changes["model_prefix"], job.resource_arn)
        except JobFailed as exc:
            update.update(status=Status.CREATE_FAILED, failure_reason=exc.reason, last_updated_date_time=resources.now())
            _set(services, job, latest_recommender_update=update)
            return
    update.update(status=Status.ACTIVE, last_updated_date_time=resources.now())
    _commit(services, job, latest_recommender_update=update, **changes)


def stop_recommender(services: Services, job: Job, should_stop: Callable[[], bool]) -> None:
    """STOP PENDING -> STOP IN_PROGRESS -> INACTIVE (serving refuses it from STOP PENDING on)."""
    _set(services, job, Status.STOP_IN_PROGRESS)
    _set(services, job, Status.INACTIVE)


def start_recommender(services: Services, job: Job, should_stop: Callable[[], bool], *, prepare: PrepareModel) -> None:
    """START PENDING -> START IN_PROGRESS -> ACTIVE once the model loads again."""
    recommender = _set(services, job, Status.START_IN_PROGRESS)
    stats = prepare(services, Recommender.of(recommender).model_prefix, job.resource_arn)
    _set(services, job, Status.ACTIVE, serving_stats=stats)


def delete_recommender(services: Services, job: Job, should_stop: Callable[[], bool]) -> None:
    """DELETE PENDING -> DELETE IN_PROGRESS -> gone, with its model artifacts."""
    with queue.fenced(services.engine, job) as conn:
        found = resources.find(conn, job.resource_arn, KIND)
        if found is None:
            return
        resources.update(conn, job.resource_arn, status=Status.DELETE_IN_PROGRESS)
    with queue.fenced(services.engine, job) as conn:
        resources.delete(conn, job.resource_arn)
    if Recommender.of(found).storage_id:
        services.blobs.delete_prefix(keys.model_prefix(Recommender.of(found).storage_id))  # every generation
