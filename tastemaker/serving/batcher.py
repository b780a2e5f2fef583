"""Micro-batching: concurrent requests for one model are scored in one batch call (leader/follower, no thread)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tastemaker.realtime.inline import is_inline

MAX_BATCH = 64  # measured sweet spot for catalogue-wide scoring is 16-64 rows


class _Slot:
    __slots__ = ("done", "error", "query", "result")

    def __init__(self, query: Any) -> None:
        self.query = query
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False


class Batcher:
    """score(query) -> row. Whoever finds no batch running scores everything pending (up to MAX_BATCH);
    requests arriving meanwhile wait and form the next batch. A lone request is scored at once."""

    def __init__(self, compute: Callable[[Sequence[Any]], Any], max_batch: int = MAX_BATCH) -> None:
        self._compute = compute
        self._max = max_batch
        self._cond = threading.Condition()
        self._pending: list[_Slot] = []
        self._running = False
        self.batches = 0
        self.rows = 0

    def score(self, query: Any) -> Any:
        if is_inline():  # on the event loop nothing runs concurrently: no batch can form, skip the hand-off
            row = self._compute([query])[0]
            return np.array(row, copy=True) if isinstance(row, np.ndarray) else row
        slot = _Slot(query)
        with self._cond:
            self._pending.append(slot)
        while True:
            with self._cond:
                while not slot.done and self._running:
                    self._cond.wait()
                if slot.done:
                    break
                self._running = True
                batch = self._pending[: self._max]
                del self._pending[: self._max]
            try:
                rows = self._compute([s.query for s in batch])
                for k, s in enumerate(batch):
                    s.result = np.array(rows[k], copy=True) if isinstance(rows[k], np.ndarray) else rows[k]
            except BaseException as exc:  # noqa: BLE001 - handed to every request of the batch
                for s in batch:
                    s.error = exc
            finally:
                with self._cond:
                    for s in batch:
                        s.done = True
                    self.batches += 1
                    self.rows += len(batch)
                    self._running = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        assert slot.result is not None
        return slot.result


class BatcherRegistry:
    """One Batcher per (model prefix, scoring kind) in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batchers: dict[tuple[str, str], Batcher] = {}

    def get(self, prefix: str, kind: str, compute: Callable[[Sequence[Any]], Any]) -> Batcher:
        key = (prefix, kind)
        found = self._batchers.get(key)
        if found is None:
            with self._lock:
                found = self._batchers.setdefault(key, Batcher(compute))
        return found


def user_scorer(model: Any) -> Callable[[Sequence[Any]], np.ndarray]:
    """compute() for score_users: queries are (user row, history item indices, context dict or None)."""

    def compute(queries: Sequence[Any]) -> np.ndarray:
        users = np.asarray([q[0] for q in queries], dtype=np.int64)
        histories = [q[1] for q in queries]
        contexts = [q[2] or {} for q in queries]
        return model.score_users(users, histories, contexts if any(contexts) else None)

    return compute


def item_scorer(model: Any) -> Callable[[Sequence[Any]], np.ndarray]:
    def compute(queries: Sequence[Any]) -> np.ndarray:
        return model.score_items(np.asarray(queries, dtype=np.int64))

    return compute
