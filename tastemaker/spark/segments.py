"""Batch segment scoring on Spark: the model broadcast, the users in partitions, the local path's ranking.

`SparkSegments` is made once per batch segment job whose model has many users (tastemaker.jobs.segments). It
broadcasts the model's files (tastemaker.spark.batch.ModelBroadcast: the item factors, and the user factors or
histories, which each executor slices) and the job filter's user mask, and splits the model's user rows into
contiguous ranges, one partition each. For a block of queries every executor scores its range of users
with the caller's `rank` (tastemaker.jobs.segments.rank_users: the model's own score_users_for_items /
score_users_for_attributes restricted to those rows, then top_users), so it returns its `num` best users with
their scores. The driver merges the ranges' candidates per query by score, ties to the lower model row, as
top_users orders the whole: the best `num` of the union are the best `num` of all users, so the segments are
the in-process ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.spark.batch import ModelBroadcast

# (model, by_attributes, queries, num, keep mask or None, user rows) -> per query (model rows, scores)
RankRule = Callable[[Any, bool, Any, int, "np.ndarray | None", slice], list[tuple[np.ndarray, np.ndarray]]]
RANGE_ALIGN = 64  # range bounds are multiples of this many users


class SparkSegments:
    """Ranks the users of one model for blocks of queries on a Spark session; `close` frees the broadcasts."""

    def __init__(self, session: Any, model_dir: Path, n_users: int, keep: np.ndarray | None, num: int,
                 rank: RankRule, users_per_range: int = 250_000) -> None:
        self.context = session.sparkContext
        self.model = ModelBroadcast(self.context, model_dir)
        self.keep = None if keep is None else self.context.broadcast(np.asarray(keep, bool))
        count = max(self.context.defaultParallelism, -(-n_users // users_per_range))
        size = -(-max(1, -(-n_users // count)) // RANGE_ALIGN) * RANGE_ALIGN
        self.ranges = [(start, min(start + size, n_users)) for start in range(0, n_users, size)]
        self.num, self.rank = num, rank

    def top(self, by_attributes: bool, queries: Any) -> list[np.ndarray]:
        """Per query, in order: the model rows of its `num` best users (ties: lower row first)."""
        if len(self.ranges) == 0 or len(queries) == 0:
            return [np.zeros(0, np.int64) for _ in range(len(queries))]
        asked = [list(q) for q in queries] if by_attributes else np.asarray(queries, np.int64).tolist()
        broadcast, keep, num, rank = self.model, self.keep, self.num, self.rank

        def partition(ranges: Iterator[tuple[int, int]]) -> Iterator[tuple[int, list[int], list[float]]]:
            model = broadcast.load()
            mask = None if keep is None else keep.value
            block = asked if by_attributes else np.asarray(asked, np.int64)
            for start, end in ranges:
                for k, (rows, scores) in enumerate(rank(model, by_attributes, block, num, mask, slice(start, end))):
                    yield k, rows.tolist(), scores.tolist()

        found = self.context.parallelize(self.ranges, len(self.ranges)).mapPartitions(partition).collect()
        return merge_tops(found, len(queries), num)

    def close(self) -> None:
        self.model.destroy()
        if self.keep is not None:
            self.keep.destroy()


def merge_tops(found: list[tuple[int, list[int], list[float]]], n_queries: int, num: int) -> list[np.ndarray]:
    """Per query, the `num` best of the ranges' candidates (query, model rows, float32 scores): best score first,
    ties to the lower row, as top_users orders all users at once."""
    rows: list[list[int]] = [[] for _ in range(n_queries)]
    scores: list[list[float]] = [[] for _ in range(n_queries)]
    for k, these, values in found:
        rows[k] += these
        scores[k] += values
    out = []
    for these, values in zip(rows, scores, strict=True):
        r, v = np.asarray(these, np.int64), np.asarray(values, np.float32)
        out.append(r[np.lexsort((r, -v))][:num])
    return out
