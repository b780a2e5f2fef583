"""Versioned data snapshots of a dataset group for serving: Items/Users tables, re-read when data changes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from tastemaker.control.context import Services
from tastemaker.store import resources

VERSION_CHECK_SECONDS = 1.0  # a dataset's data_version is looked up at most this often per process


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset's data is: its ARN, version stamp, schema text and the blob keys of its parts."""

    arn: str
    version: str
    schema: Any  # parsed tastemaker.data.schemas.Schema
    part_keys: tuple[str, ...]


class VersionWatch:
    """Per (group, dataset type): the current DatasetInfo, refreshed from the database at most once a second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], tuple[float, DatasetInfo | None]] = {}

    def current(self, services: Services, group_arn: str, dataset_type: str) -> DatasetInfo | None:
        key = (group_arn, dataset_type)
        now = time.monotonic()
        cached = self._seen.get(key)
        if cached is not None and now - cached[0] < VERSION_CHECK_SECONDS:
            return cached[1]
        info = _read_info(services, group_arn, dataset_type)
        with self._lock:
            self._seen[key] = (now, info)
        return info


def _read_info(services: Services, group_arn: str, dataset_type: str) -> DatasetInfo | None:
    from tastemaker.control.datasets import dataset_of_type, part_keys
    from tastemaker.control.schemas import load_schema

    with services.engine.connect() as conn:
        dataset = dataset_of_type(conn, group_arn, dataset_type)
        if dataset is None or dataset.status != "ACTIVE":
            return None
        keys = tuple(part_keys(conn, dataset.arn))
        _res, schema = load_schema(conn, dataset.body["schema_arn"])
    version = f"{dataset.body.get('data_version', '')}:{len(keys)}:{keys[-1] if keys else ''}"
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

    def get(self, key: Any, version: Any, build: Callable[[], Any]) -> Any:
        hit = self._values.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
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


def group_of(services: Services, arn: str) -> str | None:
    with services.engine.connect() as conn:
        found = resources.find(conn, arn)
    return found.dataset_group_arn if found else None
