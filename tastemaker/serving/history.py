"""Per-user interaction history for serving: a bulk index (memory-mapped .npy) plus recently streamed events."""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastemaker.filters.compiler import DEFAULT_HISTORY_DEPTH
from tastemaker.realtime.inline import slow_step
from tastemaker.services import Services

ARRAYS = ("users", "indptr", "items", "types", "times", "item_vocab", "type_vocab")
MAX_PER_TYPE = 300  # newest events kept per user and event type (filters and exclusions consider 100 by default)


@dataclass
class UserEvents:
    """One user's events, newest first: item ids, lower-case event types, epoch-second timestamps."""

    item_ids: list[str]
    event_types: list[str]
    timestamps: list[int]

    def __len__(self) -> int:
        return len(self.item_ids)


class HistoryIndex:
    """Bulk interactions grouped by user (CSR over sorted user ids), newest first, capped per user."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.users = arrays["users"]
        self.indptr = arrays["indptr"]
        self.items = arrays["items"]
        self.types = arrays["types"]
        self.times = arrays["times"]
        self.item_vocab = arrays["item_vocab"]
        self.type_vocab = [str(t) for t in arrays["type_vocab"].tolist()]

    def events(self, user_id: str) -> UserEvents:
        if self.users.size == 0:
            return UserEvents([], [], [])
        pos = int(np.searchsorted(self.users, user_id))
        if pos >= self.users.size or str(self.users[pos]) != user_id:
            return UserEvents([], [], [])
        lo, hi = int(self.indptr[pos]), int(self.indptr[pos + 1])
        vocab = self.item_vocab
        return UserEvents([str(vocab[i]) for i in self.items[lo:hi].tolist()],
                          [self.type_vocab[t] for t in self.types[lo:hi].tolist()],
                          [int(t) for t in self.times[lo:hi].tolist()])


def build_arrays(table: pa.Table | None) -> dict[str, np.ndarray]:
    """The index arrays from an Interactions table (USER_ID, ITEM_ID, TIMESTAMP, optional EVENT_TYPE)."""
    empty = {"users": np.zeros(0, "<U1"), "indptr": np.zeros(1, np.int64), "items": np.zeros(0, np.int32),
             "types": np.zeros(0, np.int16), "times": np.zeros(0, np.int64), "item_vocab": np.zeros(0, "<U1"),
             "type_vocab": np.asarray([""], dtype=str)}
    if table is None or table.num_rows == 0 or "USER_ID" not in table.column_names:
        return empty
    users = pc.dictionary_encode(table.column("USER_ID").combine_chunks())
    items = pc.dictionary_encode(table.column("ITEM_ID").combine_chunks())
    if "EVENT_TYPE" in table.column_names:
        lowered = pc.utf8_lower(pc.fill_null(table.column("EVENT_TYPE").combine_chunks(), ""))
        types = pc.dictionary_encode(lowered)
        type_codes = types.indices.to_numpy(zero_copy_only=False).astype(np.int16)
        type_vocab = np.asarray(types.dictionary.to_pylist(), dtype=str)
    else:
        type_codes = np.zeros(table.num_rows, np.int16)
        type_vocab = np.asarray([""], dtype=str)
    times = table.column("TIMESTAMP").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    user_vocab = np.asarray(users.dictionary.to_pylist(), dtype=str)
    # user codes renumbered so that codes follow sorted user ids (searchsorted on the saved user array)
    order_of_vocab = np.argsort(user_vocab, kind="stable")
    rank = np.empty_like(order_of_vocab)
    rank[order_of_vocab] = np.arange(order_of_vocab.size)
    user_codes = rank[users.indices.to_numpy(zero_copy_only=False)]
    item_codes = items.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    # keep the newest MAX_PER_TYPE of each (user, event type), then order each user's events newest first
    by_type = np.lexsort((-times, type_codes, user_codes))
    group = user_codes[by_type].astype(np.int64) * (int(type_codes.max(initial=0)) + 1) + type_codes[by_type]
    starts = np.flatnonzero(np.concatenate([[True], group[1:] != group[:-1]]))
    sizes = np.diff(np.concatenate([starts, [group.size]]))
    rank_in_group = np.arange(group.size) - np.repeat(starts, sizes)
    kept_rows = by_type[rank_in_group < MAX_PER_TYPE]
    order = kept_rows[np.lexsort((-times[kept_rows], user_codes[kept_rows]))]
    user_codes, times, item_codes, type_codes = user_codes[order], times[order], item_codes[order], type_codes[order]
    kept = np.bincount(user_codes, minlength=user_vocab.size)
    return {"users": user_vocab[order_of_vocab], "indptr": np.concatenate([[0], np.cumsum(kept)]).astype(np.int64),
            "items": item_codes, "types": type_codes, "times": times,
            "item_vocab": np.asarray(items.dictionary.to_pylist(), dtype=str), "type_vocab": type_vocab}


class HistoryStore:
    """History indexes per (dataset group, Interactions version), saved once under the cache dir, mmapped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._indexes: dict[str, tuple[str, HistoryIndex]] = {}

    def index(self, services: Services, group_arn: str) -> HistoryIndex | None:
        from tastemaker.serving.snapshots import read_table

        watch = services.serving.versions
        info = watch.current(services, group_arn, "Interactions")
        if info is None:
            return None
        hit = self._indexes.get(group_arn)
        if hit is not None and hit[0] == info.version:
            return hit[1]
        slow_step("history index")
        with self._lock:
            hit = self._indexes.get(group_arn)
            if hit is not None and hit[0] == info.version:
                return hit[1]
            folder = services.settings.cache_dir / "serving" / "history" / _digest(group_arn, info.version)
            if not (folder / "DONE").exists():
                _save(folder, build_arrays(read_table(services, info, "Interactions")))
            index = HistoryIndex({name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS})
            self._indexes[group_arn] = (info.version, index)
            return index


def _digest(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:20]


def _save(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write into a temporary folder, then rename: other worker processes never see a half-written index."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    temp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    temp.mkdir(exist_ok=True)
    for name, arr in arrays.items():
        np.save(temp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
    (temp / "DONE").touch()
    try:
        temp.rename(folder)
    except OSError:  # another process finished first
        import shutil

        shutil.rmtree(temp, ignore_errors=True)


class TrackerWatch:
    """A dataset group's event tracker (no tracker, no streamed events), refreshed each second.

    The tracker's ARN and creation time mark a generation of the group's streamed events: when they change
    (the group, its Interactions dataset or its tracker was deleted and created again), what this process
    holds of the group's real-time state is dropped, so a group re-created with the same ARN starts empty
    here even when another process ran the delete.
    """

    def __init__(self) -> None:
        from tastemaker.serving.snapshots import Refreshing

        self._seen = Refreshing(1.0)
        self._generations: dict[str, str | None] = {}

    def generation(self, services: Services, group_arn: str) -> str | None:
        """The group's tracker as "arn@created", or None when it has none."""
        from tastemaker.store import resources
        from tastemaker.store.records import EventTracker

        def load() -> str | None:
            with services.read_engine.connect() as conn:
                trackers = resources.children(conn, kind="event_tracker", dataset_group_arn=group_arn)
            # A data deletion job bumps `state_generation`: every process drops what it holds of the group.
            return ",".join(f"{t.arn}@{t.created_at}/{EventTracker.of(t).state_generation}" for t in trackers) or None

        return self._seen.get(group_arn, load)  # type: ignore[no-any-return]

    def forget_all(self) -> None:
        """Read every group's tracker again on its next request (the change watch saw a tracker change)."""
        from tastemaker.serving.snapshots import Refreshing

        self._seen = Refreshing(1.0)

    def has_tracker(self, services: Services, group_arn: str) -> bool:
        return self.generation(services, group_arn) is not None

    def changed(self, group_arn: str, generation: str | None) -> bool:
        """Whether the group's generation differs from the one this process saw last (the first sighting of
        a group is no change: nothing is held of it yet)."""
        last = self._generations.get(group_arn, generation)
        self._generations[group_arn] = generation
        return last != generation


def has_tracker(services: Services, group_arn: str) -> bool:
    return services.serving.trackers.has_tracker(services, group_arn)


def streamed_events(services: Services, group_arn: str, user_id: str,
                    limit_per_type: int = DEFAULT_HISTORY_DEPTH) -> UserEvents:
    """Recent PutEvents of a user or session, newest first (empty while the group has no event tracker)."""
    watch = services.serving.trackers
    generation = watch.generation(services, group_arn)
    state = services.realtime.state()
    if watch.changed(group_arn, generation):
        state.forget_group(group_arn)
    if generation is None:
        return UserEvents([], [], [])
    recent = [e for e in state.recent_events(group_arn, user_id, limit_per_type=limit_per_type)
              if e.item_id is not None]
    return UserEvents([str(e.item_id) for e in recent], [str(e.event_type).lower() for e in recent],
                      [int(e.timestamp) for e in recent])


def user_history(services: Services, group_arn: str, user_id: str, *, bulk: bool = True) -> UserEvents:
    """Streamed events followed by bulk-imported ones, newest first."""
    recent = streamed_events(services, group_arn, user_id)
    if not bulk:
        return recent
    index = services.serving.histories.index(services, group_arn)
    past = index.events(user_id) if index is not None else UserEvents([], [], [])
    return UserEvents(recent.item_ids + past.item_ids, recent.event_types + past.event_types,
                      recent.timestamps + past.timestamps)
