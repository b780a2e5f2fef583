"""Batch inference scoring on Spark: blocks of users in partitions, the model broadcast, the local path's own scoring.

`SparkScorer` is made once per batch inference job. It broadcasts the model's files (the saved artifact,
numpy arrays and JSON: no code) to the executors, where each Python worker loads them once and keeps the
model while the job runs. `score` takes a chunk's queries (model row, recent-event history) in input order
and the blocks the local path scores them in (tastemaker.serving.batch.score_blocks); whole blocks are spread
over partitions, and an executor scores each block with one `model.score_users` call and the caller's top-k
rule (tastemaker.serving.batch.top_with_softmax), with one BLAS thread as the serving processes do. The same
functions on the same arrays in the same blocks with the same thread count: the chosen items and their scores
are the same bits as the local path's (a matrix product's last bits depend on the block of rows and on the
threads, not only on the row), given the same numpy and BLAS build and CPU kind on the executors. What comes
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

    def __init__(self, session: Any, model_dir: Path, num: int, top: TopRule) -> None:
        self.context = session.sparkContext
        self.model = ModelBroadcast(self.context, model_dir)
        self.num, self.top = num, top

    def score(self, queries: list[tuple[int, np.ndarray]],
              blocks: list[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, in order: (chosen item positions int64, their scores float64); `blocks` (start, end)
        cover the queries in order, and each is scored in one piece."""
        if not queries:
            return []
        slices = min(len(blocks), max(self.context.defaultParallelism, -(-len(blocks) // 4)))
        shipped = [(b, [(int(row), np.asarray(history, np.int32).tolist()) for row, history in queries[start:end]])
                   for b, (start, end) in enumerate(blocks)]
        broadcast, num, top = self.model, self.num, self.top

        def partition(parts: Iterator[tuple[int, list[tuple[int, list[int]]]]]
                      ) -> Iterator[tuple[int, list[list[int]], list[list[float]]]]:
            from threadpoolctl import threadpool_limits

            threadpool_limits(1, user_api="blas")  # as the serving processes: the thread count changes the bits
            model = broadcast.load()
            for b, block in parts:
                scores = np.asarray(model.score_users(np.asarray([row for row, _ in block], np.int64),
                                                      [np.asarray(h, np.int32) for _, h in block]))
                picked, values = top(scores, num)
                yield b, picked.tolist(), values.tolist()

        results = sorted(self.context.parallelize(shipped, slices).mapPartitions(partition).collect(),
                         key=lambda result: result[0])
        return [(np.asarray(p, np.int64), np.asarray(v, np.float64))
                for _, picked, values in results for p, v in zip(picked, values, strict=True)]

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
