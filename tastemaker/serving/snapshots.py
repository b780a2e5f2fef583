"""Versioned data snapshots of a dataset group for serving: Items/Users tables, re-read when data changes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from tastemaker.realtime.inline import slow_step
from tastemaker.services import Services
from tastemaker.store.records import Dataset
from tastemaker.store.status import Status

VERSION_CHECK_SECONDS = 1.0  # a dataset's data_version is looked up at most this often per process
STALE_LIMIT = 3  # a cached value older than this many TTLs is re-read on the request path


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset's data is: its ARN, version stamp, schema text and the blob keys of its parts."""

    arn: str
    version: str
    schema: Any  # parsed tastemaker.data.schemas.Schema
    part_keys: tuple[str, ...]


class Refreshing:
    """key -> load(key), refreshed when older than `ttl` seconds by one background thread per key, while
    requests keep getting the previous value: database latency never lands on the request path after the
    first load. Errors are cached like values and re-raised."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._values: dict[Any, tuple[float, Any, bool]] = {}
        self._refreshing: set[Any] = set()

    def get(self, key: Any, load: Callable[[], Any]) -> Any:
        hit = self._values.get(key)
        now = time.monotonic()
        if hit is None or now - hit[0] >= STALE_LIMIT * self.ttl:
            slow_step("database read")
            hit = self._load(key, load)  # first use, or idle for a while: read now rather than serve old news
        elif now - hit[0] >= self.ttl:
            with self._lock:
                start = key not in self._refreshing
                self._refreshing.add(key)
            if start:
                threading.Thread(target=self._refresh, args=(key, load), daemon=True).start()
        if hit[2]:
            raise hit[1]
        return hit[1]

    def _load(self, key: Any, load: Callable[[], Any]) -> tuple[float, Any, bool]:
        stamp = time.monotonic()
        try:
            entry = (stamp, load(), False)
        except Exception as exc:  # noqa: BLE001 - cached and re-raised to callers until the next refresh
            entry = (stamp, exc, True)
        self._values[key] = entry
        return entry

    def _refresh(self, key: Any, load: Callable[[], Any]) -> None:
        try:
            self._load(key, load)
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def reload(self, key: Any, load: Callable[[], Any]) -> Any:
        """Load now (the current value stays visible to load() and other callers until the new one replaces it)."""
        slow_step("database read")
        hit = self._load(key, load)
        if hit[2]:
            raise hit[1]
        return hit[1]

    def peek(self, key: Any) -> Any:
        """The cached value (None when there is none, or the cached entry is an error); never loads."""
        hit = self._values.get(key)
        return None if hit is None or hit[2] else hit[1]

    def put(self, key: Any, value: Any) -> None:
        self._values[key] = (time.monotonic(), value, False)

    def forget(self, key: Any) -> None:
        self._values.pop(key, None)


class VersionWatch:
    """Per (group, dataset type): the current DatasetInfo, refreshed from the database about once a second."""

    def __init__(self) -> None:
        self._values = Refreshing(VERSION_CHECK_SECONDS)

    def current(self, services: Services, group_arn: str, dataset_type: str) -> DatasetInfo | None:
        return self._values.get((group_arn, dataset_type), lambda: _read_info(services, group_arn, dataset_type))


def _read_info(services: Services, group_arn: str, dataset_type: str) -> DatasetInfo | None:
    from tastemaker.control.datasets import dataset_of_type
    from tastemaker.control.schemas import load_schema
    from tastemaker.store.dataset_parts import part_keys

    with services.read_engine.connect() as conn:
        dataset = dataset_of_type(conn, group_arn, dataset_type)
        if dataset is None or dataset.status != Status.ACTIVE:
            return None
        keys = tuple(part_keys(conn, dataset.arn))
        _res, schema = load_schema(conn, Dataset.of(dataset).schema_arn)
    version = f"{Dataset.of(dataset).data_version}:{len(keys)}:{keys[-1] if keys else ''}"
    return DatasetInfo(dataset.arn, version, schema, keys)


def read_table(services: Services, info: DatasetInfo, dataset_type: str) -> pa.Table:
    from tastemaker.data.tables import read_dataset

    paths = [services.blobs.local_path(key) for key in info.part_keys]
    return read_dataset(paths, info.schema, dataset_type)


class VersionedCache:
    """Values built from one dataset version, rebuilt when the version changes; one build at a time per key."""

    def __init__(self, max_entries: int = 64) -> None:
        self._lock = threading.Lock()
        self._values: dict[Any, tuple[Any, Any]] = {}
        self._building: dict[Any, threading.Lock] = {}
        self.max_entries = max_entries

    def built_at(self, version: Any) -> list[Any]:
        """The values held for `version` (under any key)."""
        return [value for held, value in list(self._values.values()) if held == version]

    def get(self, key: Any, version: Any, build: Callable[[], Any]) -> Any:
        hit = self._values.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        slow_step("snapshot build")
        with self._lock:
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:
            hit = self._values.get(key)
            if hit is not None and hit[0] == version:
                return hit[1]
            value = build()
            with self._lock:
                if len(self._values) >= self.max_entries and key not in self._values:
                    self._values.pop(next(iter(self._values)))
                self._values[key] = (version, value)
            return value
