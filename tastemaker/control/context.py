"""What every control function receives: the shared services and the caller's region/account."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from tastemaker.config import Settings
from tastemaker.store.blobs import BlobStore


@dataclass
class Services:
    """Long-lived shared state of one process: settings, database engine, blob store, caches."""

    settings: Settings
    engine: sa.Engine
    blobs: BlobStore
    caches: dict[str, Any] = field(default_factory=dict)
    # False in processes that only run jobs (the parent of `serve --workers N`, `tastemaker worker`): a deploy
    # job there checks a model and builds its index file, then lets go of what only serving would use.
    serves_requests: bool = True

    def cache(self, key: str, factory: Callable[[], Any]) -> Any:
        """The process-wide object under `key`, made by `factory` on first use (dict.setdefault would build
        a throw-away object on every call: these lookups are on the request path)."""
        found = self.caches.get(key)
        if found is None:
            found = self.caches.setdefault(key, factory())
        return found

    def s3_client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.settings.s3_endpoint_url)

    @cached_property
    def account(self) -> str:
        return self.settings.account_id

    @cached_property
    def read_engine(self) -> sa.Engine:
        """For reads only (Describe, List, serving lookups): never waits for SQLite's write lock."""
        from tastemaker.store.db import read_only

        return read_only(self.engine)


@dataclass
class RequestContext:
    """One API call: the services plus the region from the caller's credential scope."""

    services: Services
    region: str

    @property
    def account(self) -> str:
        return self.services.settings.account_id

    @property
    def engine(self) -> sa.Engine:
        return self.services.engine

    @property
    def read_engine(self) -> sa.Engine:
        return self.services.read_engine
