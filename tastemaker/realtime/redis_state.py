"""Real-time state in Redis, shared by several API replicas: capped, time-ordered event sets per user/session."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import orjson

from tastemaker.realtime.state import RecentEvent

log = logging.getLogger("tastemaker.realtime")
DEFAULT_CAP = 500  # events kept per (user or session, event type); recent_events' limit is capped to this
DEFAULT_TTL = 90 * 24 * 3600  # seconds an idle user's or session's keys live


class RedisState:
    """Layout, under `prefix` + the dataset group ARN and "u:<userId>" or "s:<sessionId>":

    * `<key>:types` — set of the event types seen;
    * `<key>:t:<eventType>` — sorted set of events scored by timestamp; a member is a JSON array whose
      first element is an arrival stamp (ns clock + process + counter), so equal timestamps come back
      newest-arrival first, as in the embedded implementation. Trimmed to the newest `cap` per type.

    One MULTI/EXEC transaction per record_events call, so a reader never sees half a batch.
    """

    def __init__(self, client: Any, *, prefix: str = "tm:rt:", cap: int = DEFAULT_CAP, ttl: int = DEFAULT_TTL,
                 fallback: Any = None) -> None:
        self.client = client
        self.fallback = fallback  # answers reads (from the durable table) while Redis is unreachable
        self.prefix = prefix
        self.cap = cap
        self.ttl = ttl
        self._counter = itertools.count()
        self._pid = os.getpid() % 100000

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisState:
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5), **kwargs)

    def _key(self, group: str, who: str, ident: str) -> str:
        return f"{self.prefix}{group}:{who}:{ident}"

    def _stamp(self) -> str:
        return f"{time.time_ns():020d}{self._pid:05d}{next(self._counter) % 1000000:06d}"

    def record_events(self, dataset_group_arn: str, user_id: str | None, session_id: str,
                      events: Sequence[RecentEvent]) -> None:
        if not events:
            return
        keys = [self._key(dataset_group_arn, "s", session_id)]
        if user_id:
            keys.append(self._key(dataset_group_arn, "u", user_id))
        pipe = self.client.pipeline(transaction=True)
        touched: set[str] = set()
        for event in events:
            member = orjson.dumps([self._stamp(), event.item_id, event.event_type, event.event_value])
            for key in keys:
                typed = f"{key}:t:{event.event_type}"
                pipe.zadd(typed, {member: event.timestamp})
                pipe.sadd(f"{key}:types", event.event_type)
                touched.add(typed)
                touched.add(f"{key}:types")
        for key in touched:
            if ":t:" in key:
                pipe.zremrangebyrank(key, 0, -(self.cap + 1))
            pipe.expire(key, self.ttl)
        pipe.execute()

    def recent_events(self, dataset_group_arn: str, user_or_session_id: str,
                      limit_per_type: int = 100) -> list[RecentEvent]:
        if limit_per_type <= 0:
            return []
        if self.fallback is None:
            return self._recent(dataset_group_arn, user_or_session_id, limit_per_type)
        import redis

        try:
            return self._recent(dataset_group_arn, user_or_session_id, limit_per_type)
        except redis.RedisError as exc:
            log.warning("Redis unreachable (%s); reading recent events from the database", exc)
            return list(self.fallback.recent_events(dataset_group_arn, user_or_session_id, limit_per_type))

    def _recent(self, dataset_group_arn: str, user_or_session_id: str, limit_per_type: int) -> list[RecentEvent]:
        limit = min(limit_per_type, self.cap)
        keys = [self._key(dataset_group_arn, who, user_or_session_id) for who in ("u", "s")]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.smembers(f"{key}:types")
        type_sets = pipe.execute()
        pipe = self.client.pipeline(transaction=False)
        wanted: list[str] = []
        for key, types in zip(keys, type_sets, strict=True):
            for event_type in types:
                pipe.zrevrange(f"{key}:t:{event_type.decode()}", 0, limit - 1, withscores=True)
                wanted.append(event_type.decode())
        if not wanted:
            return []
        found: dict[str, dict[bytes, float]] = {}
        for event_type, members in zip(wanted, pipe.execute(), strict=True):
            found.setdefault(event_type, {}).update(members)  # same member under user and session: one event
        out: list[tuple[float, str, list[Any]]] = []
        for members in found.values():
            ranked = sorted(((score, orjson.loads(m)) for m, score in members.items()),
                            key=lambda pair: (pair[0], pair[1][0]), reverse=True)[:limit]
            out.extend((score, data[0], data) for score, data in ranked)
        out.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
        return [RecentEvent(data[1], data[2], float(score), data[3]) for score, _stamp, data in out]

    def clear(self, dataset_group_arn: str) -> int:
        """Remove a dataset group's keys (tests and DeleteDatasetGroup clean-up); returns how many."""
        removed = 0
        for key in self.client.scan_iter(match=f"{self.prefix}{_glob_escape(dataset_group_arn)}:*", count=500):
            removed += int(self.client.delete(key))
        return removed


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
