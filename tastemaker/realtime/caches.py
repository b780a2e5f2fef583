"""The real-time layer's process-wide state (held by Services.realtime): trackingId lookups, the event
writer that group-commits concurrent PutEvents, and the real-time state (Redis when configured, else the
embedded one over the metadata database). The writer and the state are made on first use, once."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import sqlalchemy as sa

from tastemaker.realtime.events_api import TargetCache
from tastemaker.realtime.inline import slow_step
from tastemaker.realtime.state import EmbeddedState, RealtimeState
from tastemaker.realtime.writer import GroupCommitWriter


@dataclass(eq=False)
class RealtimeCaches:
    engine: sa.Engine
    redis_url: str | None = None
    targets: TargetCache = field(default_factory=TargetCache)
    _state: RealtimeState | None = field(default=None, init=False)
    _writer: GroupCommitWriter | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def state(self) -> RealtimeState:
        """Recent events per user and session: Redis when a Redis URL is set, else the embedded state."""
        if self._state is None:
            slow_step("real-time state set-up")
            with self._lock:
                if self._state is None:
                    self._state = self._make_state()
        return self._state

    def _make_state(self) -> RealtimeState:
        if self.redis_url:
            from tastemaker.realtime.redis_state import RedisState

            return RedisState.from_url(self.redis_url, fallback=EmbeddedState(self.engine))
        return EmbeddedState(self.engine)

    def writer(self) -> GroupCommitWriter:
        """The process's group-commit writer of events."""
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = GroupCommitWriter(self.engine)
        return self._writer
