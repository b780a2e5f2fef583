"""Batch inference scoring on Spark: users in partitions, the model broadcast, the local path's own scoring.

`SparkScorer` is made once per batch inference job. It broadcasts the model's files (the saved artifact,
numpy arrays and JSON: no code) to the executors, where each Python worker loads them once and keeps the
model while the job runs. `score` takes a block of queries (model row, recent-event history) in input
order, spreads them over partitions, and on each executor scores them `step` at a time with
`model.score_users` and the caller's top-k rule (tastemaker.serving.batch.top_with_softmax): the same
functions, on the same arrays, as the local path, so the chosen items and scores are the same. What comes
back is only the k chosen positions and their scores per query; the driver names them and writes the lines.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

TopRule = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
_loaded: dict[str, Any] = {}  # on executors: broadcast token -> model (one per Python worker process)


class ModelBroadcast:
    """A model's files broadcast to the executors; `load()` there gives the loaded model (once per process)."""

    def __init__(self, context: Any, model_dir: Path) -> None:
        files = {path.name: path.read_bytes() for path in sorted(Path(model_dir).iterdir()) if path.is_file()}
        self.token = uuid.uuid4().hex
        self.files = context.broadcast(files)

    def load(self) -> Any:
        return _executor_model(self.token, self.files)

    def destroy(self) -> None:
        self.files.destroy()


class SparkScorer:
    """Scores users of one model on a Spark session; `close` frees the broadcast copies."""

    def __init__(self, session: Any, model_dir: Path, num: int, top: TopRule, step: int) -> None:
        self.context = session.sparkContext
        self.model = ModelBroadcast(self.context, model_dir)
        self.num, self.top, self.step = num, top, step

    def score(self, queries: list[tuple[int, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, in order: (chosen item positions int64, their scores float64)."""
        if not queries:
            return []
        slices = max(self.context.defaultParallelism, -(-len(queries) // (4 * self.step)))
        indexed = [(k, int(row), np.asarray(history, np.int32).tolist()) for k, (row, history) in enumerate(queries)]
        broadcast, num, top, step = self.model, self.num, self.top, self.step

        def partition(rows: Iterator[tuple[int, int, list[int]]]) -> Iterator[tuple[int, list[int], list[float]]]:
            model = broadcast.load()
            block = list(rows)
            for start in range(0, len(block), step):
                part = block[start:start + step]
                scores = np.asarray(model.score_users(np.asarray([r for _, r, _ in part], np.int64),
                                                      [np.asarray(h, np.int32) for _, _, h in part]))
                picked, values = top(scores, num)
                for (k, _, _), p, v in zip(part, picked, values, strict=True):
                    yield k, p.tolist(), v.tolist()

        results = self.context.parallelize(indexed, slices).mapPartitions(partition).collect()
        out: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0, np.int64), np.zeros(0))] * len(queries)
        for k, picked, values in results:
            out[k] = (np.asarray(picked, np.int64), np.asarray(values, np.float64))
        return out

    def close(self) -> None:
        self.model.destroy()


def _executor_model(token: str, files: Any) -> Any:
    """The broadcast model in this executor process, loaded once per job from its files."""
    model = _loaded.get(token)
    if model is None:
        from tastemaker.recipes import load_model  # the registry: recipe modules register their model kinds

        _loaded.clear()  # a new job: the previous job's model is no longer needed
        folder = Path(tempfile.mkdtemp(prefix="tm-spark-model-"))
        for name, data in files.value.items():
            (folder / name).write_bytes(data)
        try:
            model = load_model(folder, mmap=False)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        _loaded[token] = model
    return model
