"""The process container: what one process shares between requests and jobs, each under a typed name.

Built once per process by the wiring (tastemaker.cli.wiring.make_services): the settings, the metadata
database engine, the blob store, and the process-wide state of the two hot paths, `serving` (loaded models,
indexes, filter masks, recent histories) and `realtime` (event-tracker lookups, the group-commit writer, the
real-time state). Lower layers only name the types (type-checking imports), so the container does not make
`control` or `store` depend on the layers above them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tastemaker.config import Settings
from tastemaker.store.blobs import BlobStore
from tastemaker.store.db import read_only

if TYPE_CHECKING:
    from tastemaker.realtime.caches import RealtimeCaches
    from tastemaker.serving.caches import ServingCaches


@dataclass(eq=False)
class Services:
    """Long-lived shared state of one process."""

    settings: Settings
    engine: sa.Engine
    blobs: BlobStore
    serving: ServingCaches
    realtime: RealtimeCaches
    # False in processes that only run jobs (the parent of `serve --workers N`, `tastemaker worker`): a deploy
    # job there checks a model and builds its index file, then lets go of what only serving would use.
    serves_requests: bool = True
    # For reads only (Describe, List, serving lookups): never waits for SQLite's write lock.
    read_engine: sa.Engine = field(init=False)

    def __post_init__(self) -> None:
        self.read_engine = read_only(self.engine)

    def s3_client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.settings.s3_endpoint_url)
