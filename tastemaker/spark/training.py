"""The collaborative engine's ALS factors fitted with Spark MLlib's ALS, for training data above a size.

`use_spark_als(master, ...)` is called by the training subprocess (tastemaker.jobs.train_process) when a Spark
master is configured and the data has at least `spark_min_interactions` interactions; from then on every ALS
fit of that process (the offline evaluation's fit, the final fit, HPO trials) goes through `SparkAls` instead
of implicit. Only the factor fit moves: the interaction matrix (one entry per user-item pair, the largest
event weight) is built in-process as before, its entries are sent to Spark as an Arrow-backed DataFrame of
(user row, item row, weight), `pyspark.ml.recommendation.ALS` fits them, and the factors come back as the
same (n_users, k) and (n_items, k) float32 arrays the local fit returns, rows in the same order (a user or
item without entries gets zeros). So the saved model is the same artifact and serving is unchanged.

Mapping of the local engine's settings (tastemaker.recipes.collaborative):
- rank = hidden_dimension, maxIter = ALS_ITERATIONS, alpha = ALS_ALPHA, seed = the version's seed,
  implicitPrefs = True;
- regParam = ALS_REGULARIZATION. MLlib multiplies it by each row's number of interactions (ALS-WR), implicit
  does not; both are small beside the data term (each interaction adds about alpha x y y^T), and the measured
  NDCG@10 parity (tests/e2e/test_spark_training.py, bench/scale.py) is what says the mapping holds;
- confidence: MLlib uses 1 + alpha * weight, implicit alpha * weight; the serving fold-in (collaborative.fold_in)
  uses MLlib's form.

The transitions, popularity and stored histories stay in-process: each is one vectorised pass over the
sorted interaction arrays (3.6 and 0.5 cpu s at 6M interactions beside 86.7 for the ALS, docs/scaling.md), and
the driver holds those arrays anyway to build the matrix. The EASE engine (catalogues of at most
EASE_MAX_ITEMS active items) also stays in-process: its cost is the dense solve over items, not the
interactions.

A stop request cancels the Spark jobs of the fit (a watcher thread polls should_stop); a Spark failure
raises `SparkTrainingFailed` whose message names Spark's own error (tastemaker.spark.session.failure_reason).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from tastemaker.errors import JobFailed
from tastemaker.recipes import collaborative
from tastemaker.recipes.base import Progress, ShouldStop, TrainingStopped, report
from tastemaker.spark.session import SparkUnavailable, failure_reason, spark_session, with_hint

STOP_POLL_SECONDS = 0.5
CHECKPOINT_INTERVAL = 5  # iterations between cuts of ALS's lineage (a shorter task graph to serialise)


class SparkTrainingFailed(JobFailed):
    """The Spark fit failed; `reason` is the solution version's failureReason."""


def spark_reason(exc: BaseException) -> str:
    """failure_reason, and for a JVM error wrapped by py4j ("An error occurred while calling ...") the
    JVM exception's own line (`org.apache.spark.SparkException: ...`) instead of py4j's preamble."""
    reason = failure_reason(exc)
    if reason.startswith("An error occurred while calling"):
        for line in str(exc).splitlines():
            line = line.strip().lstrip(":").strip()
            head = line.split(":", 1)[0]
            if ":" in line and head.endswith(("Exception", "Error")) and " " not in head:
                return with_hint(str(exc), line)
    return reason


class SparkAls:
    """An ALS backend for collaborative.fit_als that fits on a Spark session."""

    def __init__(self, master: str) -> None:
        self.master = master
        self.fits = 0  # how many fits ran on Spark (the training result reports it)
        self.scratch: str | None = None  # a local master's checkpoint folder, removed at exit

    def __call__(self, matrix: sp.csr_matrix, factors: int, seed: int, progress: Progress | None,
                 should_stop: ShouldStop | None, progress_span: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        start, end = progress_span
        report(progress, should_stop, start)
        try:
            session = spark_session(self.master)
        except SparkUnavailable as exc:
            reason = spark_reason(exc.__cause__) if exc.__cause__ is not None else str(exc)
            raise SparkTrainingFailed(f"Spark failed while training the factors: could not start Spark on master "
                                      f"{self.master!r}: {reason}") from exc
        context = session.sparkContext
        self._ensure_checkpoint_dir(context)
        group = f"tastemaker-als-{uuid.uuid4().hex[:12]}"
        stopped = threading.Event()
        done = threading.Event()

        def watch() -> None:  # a stop request cancels the running Spark jobs of this fit
            while not done.wait(STOP_POLL_SECONDS):
                if should_stop is not None and should_stop():
                    stopped.set()
                    context.cancelJobGroup(group)
                    return

        watcher = threading.Thread(target=watch, name="spark-als-stop", daemon=True)
        watcher.start()
        try:
            context.setJobGroup(group, "tastemaker ALS fit", interruptOnCancel=True)
            users, items = fit_on_spark(session, matrix, factors, seed)
        except Exception as exc:  # py4j and Spark errors share no base class
            if stopped.is_set():
                raise TrainingStopped() from exc
            raise SparkTrainingFailed(f"Spark failed while training the factors: {spark_reason(exc)}") from exc
        finally:
            done.set()
            watcher.join()
            context.setLocalProperty("spark.jobGroup.id", None)
            if self.scratch is not None:  # this fit's checkpoints are no longer needed
                for child in Path(self.scratch).iterdir():
                    shutil.rmtree(child, ignore_errors=True)
        if stopped.is_set():
            raise TrainingStopped()
        self.fits += 1
        report(progress, should_stop, end)
        return users, items

    def _ensure_checkpoint_dir(self, context: Any) -> None:
        """Make sure the context has a checkpoint directory: MLlib's ALS cuts its lineage there every
        CHECKPOINT_INTERVAL iterations, without which the tasks of 15 iterations overflow the JVM's stack when
        serialised. A local master gets a temporary folder (removed at exit); a cluster needs one every
        executor reaches (`spark.checkpoint.dir`), and its absence is a precise failure."""
        if context.getCheckpointDir() is not None:
            return
        if not self.master.startswith("local"):
            raise SparkTrainingFailed(
                "Spark failed while training the factors: MLlib's ALS needs a checkpoint directory that every "
                "executor can reach; set spark.checkpoint.dir (for example hdfs:///tmp/tastemaker or "
                "s3a://bucket/checkpoints) in spark-defaults.conf on the worker host.")
        self.scratch = tempfile.mkdtemp(prefix="tm-spark-als-")
        atexit.register(shutil.rmtree, self.scratch, True)
        context.setCheckpointDir(self.scratch)


def fit_on_spark(session: Any, matrix: sp.csr_matrix, factors: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MLlib ALS (implicit preferences) on the nonzeros of `matrix`; (user_factors, item_factors) float32."""
    import pyarrow as pa
    from pyspark.ml.recommendation import ALS

    coo = matrix.tocoo()
    table = pa.table({"user": pa.array(coo.row.astype(np.int32)), "item": pa.array(coo.col.astype(np.int32)),
                      "weight": pa.array(coo.data.astype(np.float32))})
    ratings = session.createDataFrame(table)  # Arrow batches to the JVM, partitioned over the executors
    parallelism = max(2, session.sparkContext.defaultParallelism)
    ratings = ratings.repartition(parallelism)
    als = ALS(rank=factors, maxIter=collaborative.ALS_ITERATIONS, regParam=collaborative.ALS_REGULARIZATION,
              alpha=collaborative.ALS_ALPHA, implicitPrefs=True, seed=seed, userCol="user", itemCol="item",
              ratingCol="weight", numUserBlocks=parallelism, numItemBlocks=parallelism,
              checkpointInterval=CHECKPOINT_INTERVAL)
    model = als.fit(ratings)
    try:
        users = _dense(model.userFactors, matrix.shape[0], factors)
        items = _dense(model.itemFactors, matrix.shape[1], factors)
    finally:
        model.userFactors.unpersist()
        model.itemFactors.unpersist()
    return users, items


def _dense(frame: Any, rows: int, factors: int) -> np.ndarray:
    """An MLlib factor DataFrame (id, features) as a (rows, factors) float32 array; absent ids get zeros."""
    table = frame.toArrow()
    out = np.zeros((rows, factors), np.float32)
    if table.num_rows:
        ids = table.column("id").to_numpy()
        features = table.column("features").combine_chunks()
        out[ids] = features.flatten().to_numpy(zero_copy_only=False).reshape(-1, factors)
    return out


def use_spark_als(master: str) -> SparkAls:
    """Route this process's ALS fits to Spark on `master`; returns the backend (its `fits` counts them)."""
    backend = SparkAls(master)
    collaborative.set_als_backend(backend)
    return backend
