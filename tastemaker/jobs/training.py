"""The `train` task: prepare a solution version's inputs, run the training subprocess, store the model."""

from __future__ import annotations

import ctypes
import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tastemaker.control.campaigns import follow_latest
from tastemaker.errors import JobFailed, JobStopped
from tastemaker.jobs.actions import with_streamed_actions
from tastemaker.jobs.lease import Lease, job_temp_dir
from tastemaker.jobs.spec import DatasetInput, TrainingSpec
from tastemaker.jobs.train_process import CHECKPOINT_FOLDER, EXIT_REFUSED, EXIT_STOPPED, PROGRESS_FILE
from tastemaker.recipes.training_data import TrainingConfig
from tastemaker.services import Services
from tastemaker.store import keys, queue, resources
from tastemaker.store.blobs import BlobStore
from tastemaker.store.queue import Job
from tastemaker.store.records import Dataset, Schema, SolutionVersion
from tastemaker.store.status import Status

log = logging.getLogger("tastemaker.jobs")
DATASET_TYPES = ("Interactions", "Items", "Users", "Actions", "Action_Interactions")
PROGRESS_RECORD_SECONDS = 2.0  # how often a running training's stage (OUT/progress.json) is recorded


try:  # loaded in the parent: between fork and exec the child only makes one plain C call
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not Linux/glibc: trainers then outlive a crashed server until they finish
    _LIBC = None


def _die_with_parent() -> None:
    """Linux: the child gets SIGKILL when the server dies, so a kill -9 of the server leaves no trainer behind."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def dataset_inputs(services: Services, conn: sa.Connection, group_arn: str) -> dict[str, DatasetInput]:
    """Schema text and local Parquet paths of each dataset of the group that has data."""
    from tastemaker.control.datasets import dataset_of_type
    from tastemaker.store.dataset_parts import part_keys

    out: dict[str, DatasetInput] = {}
    for dataset_type in DATASET_TYPES:
        dataset = dataset_of_type(conn, group_arn, dataset_type)
        if dataset is None or dataset.status != Status.ACTIVE:
            continue
        schema = resources.get(conn, Dataset.of(dataset).schema_arn, "schema")
        paths = [str(services.blobs.local_path(key)) for key in part_keys(conn, dataset.arn)]
        out[dataset_type] = DatasetInput(Schema.of(schema).schema, Schema.of(schema).domain, tuple(paths))
    return out


def export_events(conn: sa.Connection, group_arn: str, path: Path) -> Path | None:
    """Streamed events as an Interactions Parquet part; session-only events are stitched to the session's
    userId, or left out when the session never carried one (tastemaker.realtime.feed.training_records)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tastemaker.realtime.feed import training_records
    from tastemaker.realtime.records import trainable

    records, skipped = trainable(training_records(conn, group_arn))
    if skipped:
        log.warning("training on %s leaves out %d stored events with out-of-range values", group_arn, skipped)
    if not records:
        return None
    pq.write_table(pa.Table.from_pylist(records), path)
    return path


def build_spec(services: Services, version: resources.Resource, out: Path, workdir: Path) -> TrainingSpec:
    """The trainer's input for a solution version: its recipe and solutionConfig, the group's data."""
    body = version.body
    config = body.get("solution_config") or {}
    params = dict(config.get("algorithm_hyper_parameters") or {})
    params.update(config.get("feature_transformation_parameters") or {})
    events_cfg = (config.get("events_config") or {}).get("event_parameters_list") or []
    data_cfg = config.get("training_data_config") or {}
    threshold = config.get("event_value_threshold")
    with services.read_engine.connect() as conn:
        datasets = dataset_inputs(services, conn, body["dataset_group_arn"])
        events_part = export_events(conn, body["dataset_group_arn"], workdir / "events.parquet")
        datasets = with_streamed_actions(conn, body["dataset_group_arn"], datasets, workdir)
    recipe = (body.get("recipe_arn") or "").rsplit("/", 1)[-1] or None
    return TrainingSpec(
        recipe=recipe, out=out, params=params, datasets=datasets,
        events_part=str(events_part) if events_part else None,
        config=TrainingConfig(
            event_type=body.get("event_type"),
            event_value_threshold=float(threshold) if threshold not in (None, "") else None,
            events_config=[(e["event_type"], e.get("event_value_threshold"), float(e.get("weight", 1.0)))
                           for e in events_cfg],
            included_columns=data_cfg.get("included_dataset_columns") or {},
            excluded_columns=data_cfg.get("excluded_dataset_columns") or {}),
        perform_hpo=bool(body.get("perform_hpo")), hpo=config.get("hpo_config") or {},
        perform_auto_ml=bool(body.get("perform_auto_ml")),
        auto_ml_recipes=tuple(a.rsplit("/", 1)[-1] for a in (config.get("auto_ml_config") or {}).get("recipe_list")
                              or []) or ("aws-user-personalization",),
        evaluate=body.get("training_mode", "FULL") != "UPDATE",
        spark_master=services.settings.spark_master,
        spark_min_interactions=services.settings.spark_min_interactions,
    )


class CheckpointMirror:
    """Keeps the trainer's local checkpoint folder and the version's checkpoint prefix in the blob store alike:
    download() before the trainer starts (what an earlier claim saved), upload() of each file the trainer
    replaced since the last call (polled while it runs), remove() once the version has finished."""

    def __init__(self, blobs: BlobStore, prefix: str, folder: Path) -> None:
        self.blobs, self.prefix, self.folder = blobs, prefix, folder
        self._sent: dict[str, tuple[int, int]] = {}

    def download(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for key in self.blobs.list(self.prefix):
            path = self.blobs.get_file(key, self.folder / key[len(self.prefix):])
            self._sent[path.name] = _stamp(path)

    def upload(self) -> None:
        for path in sorted(self.folder.iterdir()):
            if path.name.startswith("."):  # a file the trainer is still writing
                continue
            try:
                stamp = _stamp(path)
                if self._sent.get(path.name) != stamp:
                    self.blobs.put_file(self.prefix + path.name, path)
                    self._sent[path.name] = stamp
            except FileNotFoundError:  # replaced between listing and reading: the next poll sends it
                continue
            except Exception:  # a checkpoint not stored costs only progress on a resume
                log.warning("could not store training checkpoint %s", self.prefix + path.name, exc_info=True)

    def remove(self) -> None:
        self.blobs.delete_prefix(self.prefix)


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def run_trainer(spec: TrainingSpec, workdir: Path, should_stop: Lease | Callable[[], bool],
                checkpoints: CheckpointMirror | None = None,
                on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the subprocess to its end; translate its exit into a result, JobFailed or JobStopped.

    The subprocess runs in its own session, so a Ctrl-C of the server's terminal reaches only the server (which
    hands the job back); a stop request asks it to stop (STOP file), a lost or handed-back lease kills it.
    With `checkpoints`, the trainer's checkpoint files are uploaded as they appear. `on_progress` is given the
    trainer's progress document (train_process.Stages) when it changed, every PROGRESS_RECORD_SECONDS and once
    the trainer has ended.
    """
    spec_path = workdir / "spec.json"
    spec_path.write_text(spec.to_json())
    out = spec.out
    log_path = workdir / "train.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tastemaker.jobs.train_process", str(spec_path)],
                                stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                preexec_fn=_die_with_parent)  # noqa: PLW1509 - one async-signal-safe call
        stop_sent_at: float | None = None
        progress = _ProgressReader(out / PROGRESS_FILE, on_progress)
        while proc.poll() is None:
            time.sleep(0.25)
            progress.poll()
            if checkpoints is not None and not (isinstance(should_stop, Lease) and should_stop.abandoned):
                checkpoints.upload()
            if isinstance(should_stop, Lease) and should_stop.abandoned:
                proc.kill()
                proc.wait()
                raise JobStopped()
            if should_stop() and stop_sent_at is None:
                (out / "STOP").touch()
                stop_sent_at = time.time()
            if stop_sent_at is not None and time.time() - stop_sent_at > 20:
                proc.kill()
    progress.poll(final=True)
    code = proc.returncode
    result_file = out / "result.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    if code == 0:
        return result
    if code == EXIT_STOPPED or stop_sent_at is not None:
        raise JobStopped()
    if code == EXIT_REFUSED:
        raise JobFailed(result.get("reason", "Training data was refused."))
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (the kernel kills processes that run out of memory this way)" if name == "SIGKILL" else ""
        raise JobFailed(f"The training process was killed by {name}{hint}.")
    tail = log_path.read_text(errors="replace")[-600:] if log_path.exists() else ""
    raise JobFailed(f"Training failed: {result.get('reason') or tail.strip() or f'exit code {code}'}")


class _ProgressReader:
    """Hands the trainer's progress file to `record` when it changed (at most every PROGRESS_RECORD_SECONDS, and
    at the end); a record that fails (a lease lost meanwhile) is logged, the training goes on."""

    def __init__(self, path: Path, record: Callable[[dict[str, Any]], None] | None) -> None:
        self.path, self.record = path, record
        self.last: str | None = None
        self.read_at = time.monotonic()

    def poll(self, final: bool = False) -> None:
        if self.record is None or (not final and time.monotonic() - self.read_at < PROGRESS_RECORD_SECONDS):
            return
        self.read_at = time.monotonic()
        try:
            text = self.path.read_text()
            document = json.loads(text)
        except (OSError, ValueError):  # not written yet
            return
        if text != self.last:
            self.last = text
            try:
                self.record(document)
            except Exception as exc:  # noqa: BLE001 - progress is for display; the training's outcome is not
                log.warning("could not record the training's progress: %s", exc)


def train_solution_version(services: Services, job: Job, should_stop: Lease) -> None:
    """Train into this claim's own artifact folder, then switch the version to it in one fenced write."""
    with queue.fenced(services.engine, job) as conn:
        version = resources.get(conn, job.resource_arn, "solution_version")
        if version.status in (Status.CREATE_STOPPED, Status.CREATE_STOPPING):
            raise JobStopped()
        if version.status == Status.ACTIVE:  # an earlier claim committed it; nothing is left to do
            queue.finish(conn, job)
            return
        resources.update(conn, job.resource_arn, status=Status.CREATE_IN_PROGRESS)
    workdir = job_temp_dir(services, "train", job)
    storage_id = SolutionVersion.of(version).storage_id
    try:
        out = workdir / "out"
        out.mkdir()
        spec = build_spec(services, version, out, workdir)
        mirror = CheckpointMirror(services.blobs, keys.training_checkpoint_prefix(storage_id), out / CHECKPOINT_FOLDER)
        mirror.download()
        started = time.time()
        try:
            result = run_trainer(spec, workdir, should_stop, mirror,
                                 on_progress=lambda doc: _record_progress(services, job, doc))
        except JobFailed:
            mirror.remove()  # the version fails: nothing will resume
            raise
        except JobStopped:
            if not should_stop.abandoned:  # a stop request ends the version; a lost lease leaves it to the next claim
                mirror.remove()
            raise
        prefix = keys.model_attempt_prefix(storage_id, job.id, job.lease)
        changes: dict[str, Any] = {
            "metrics": result.get("metrics", {}), "training_hours": round((time.time() - started) / 3600, 6),
            "trained_recipe": result.get("recipe"), "model_prefix": prefix,
            "training_stats": {k: result.get(k) for k in ("n_interactions", "n_users", "n_items",
                                                          "training_seconds", "spark")},
        }
        if result.get("spark"):
            log.info("solution version %s: %d ALS fits on Spark (%s)", job.resource_arn,
                     result["spark"]["als_fits"], result["spark"]["master"])
        if result.get("tuned_hpo_params"):
            changes["tuned_hpo_params"] = result["tuned_hpo_params"]
        try:
            services.blobs.delete_prefix(prefix)
            services.blobs.put_dir(prefix, out / "model")
            with queue.fenced(services.engine, job) as conn:
                current = resources.get(conn, job.resource_arn, "solution_version", lock=True)
                if current.status == Status.CREATE_STOPPING:
                    raise JobStopped()
                resources.update(conn, job.resource_arn, status=Status.ACTIVE, changes=changes)
                if result.get("auto_ml_result"):
                    resources.update(conn, SolutionVersion.of(version).solution_arn,
                                     changes={"auto_ml_result": result["auto_ml_result"]})
                queue.finish(conn, job)
        except BaseException:
            services.blobs.delete_prefix(prefix)  # ours only: the winner's folder is another
            raise
        _drop_other_attempts(services, storage_id, prefix)  # the checkpoints too: the version has finished
        follow_latest(services, job.resource_arn)  # campaigns that follow $LATEST move to the new version
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _record_progress(services: Services, job: Job, document: dict[str, Any]) -> None:
    """The trainer's stages so far on the version's stored document (`progress`: the wire never shows it),
    in a fenced write: an owner that lost the job records nothing."""
    with queue.fenced(services.engine, job) as conn:
        resources.update(conn, job.resource_arn, changes={"progress": {**document,
                                                                       "updated_at": round(time.time(), 3)}})


def _drop_other_attempts(services: Services, storage_id: str, keep: str) -> None:
    """Artifacts of earlier claims of the version (killed mid-upload, or a writer fenced out) cost only space."""
    root = keys.model_prefix(storage_id)
    for key in services.blobs.list(root):
        if not key.startswith(keep):
            try:
                services.blobs.delete(key)
            except Exception:  # noqa: BLE001 - a leftover file costs space, never correctness
                log.warning("could not delete %s", key)
