"""Real-time state in Redis, shared by several API replicas: capped, time-ordered event sets per user/session."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import orjson

from tastemaker.filters.compiler import DEFAULT_HISTORY_DEPTH
from tastemaker.realtime.state import STITCHED_SESSIONS, RecentEvent
from tastemaker.store import events as stored

log = logging.getLogger("tastemaker.realtime")
DEFAULT_CAP = 500  # events kept per (user or session, event type); recent_events' limit is capped to this
DEFAULT_TTL = 90 * 24 * 3600  # seconds an idle user's or session's keys live
REPLAY_BATCH = 500  # durable rows mirrored per replay step (one step per call at most)
REPLAY_RETRY_SECONDS = 1.0  # while Redis stays unreachable, how often a call tries the replay again
ERASE_SCAN = 1000  # keys asked for per SCAN step, and unlinked per call, when a group's keys are erased

# One request's events in one atomic server-side step (keys are built here: standalone Redis, not Cluster).
# ARGV: base ("<prefix><group>:"), userId or "", sessionId, cap, ttl, sessions kept per user, arrival score,
# then (member, timestamp, eventType) per event.
_RECORD_LUA = """
local base, user, session = ARGV[1], ARGV[2], ARGV[3]
local cap, ttl, max_sessions = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local skey = base .. 's:' .. session
local touched = {}
local function add(key, etype, member, score)
  redis.call('ZADD', key .. ':t:' .. etype, score, member)
  redis.call('SADD', key .. ':types', etype)
  touched[key .. ':t:' .. etype] = true
  touched[key .. ':types'] = false
end
local targets = {skey}
if user ~= '' then
  local ukey = base .. 'u:' .. user
  table.insert(targets, ukey)
  local known = redis.call('ZSCORE', ukey .. ':sessions', session)
  redis.call('ZADD', ukey .. ':sessions', 'GT', ARGV[7], session)
  redis.call('ZREMRANGEBYRANK', ukey .. ':sessions', 0, -(max_sessions + 1))
  redis.call('SADD', skey .. ':users', user)
  touched[ukey .. ':sessions'] = false
  touched[skey .. ':users'] = false
  if not known then  -- a new stitch: the session's anonymous events so far become the user's too
    local akey = base .. 'a:' .. session
    for _, etype in ipairs(redis.call('SMEMBERS', akey .. ':types')) do
      local found = redis.call('ZRANGE', akey .. ':t:' .. etype, 0, -1, 'WITHSCORES')
      for i = 1, #found, 2 do add(ukey, etype, found[i], found[i + 1]) end
    end
  end
else  -- anonymous: kept per session, and given to every user who still counts this session as recent
  table.insert(targets, base .. 'a:' .. session)
  for _, linked in ipairs(redis.call('SMEMBERS', skey .. ':users')) do
    local ukey = base .. 'u:' .. linked
    if redis.call('ZSCORE', ukey .. ':sessions', session) then table.insert(targets, ukey) end
  end
end
for i = 8, #ARGV, 3 do
  for _, key in ipairs(targets) do add(key, ARGV[i + 2], ARGV[i], ARGV[i + 1]) end
end
for key, sorted in pairs(touched) do
  if sorted then redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1)) end
  redis.call('EXPIRE', key, ttl)
end
return 1
"""


class RedisState:
    """Layout, under `prefix` + the dataset group ARN and "u:<userId>", "s:<sessionId>" or "a:<sessionId>":

    * `<key>:types` — set of the event types seen;
    * `<key>:t:<eventType>` — sorted set of events scored by timestamp; a member is a JSON array whose
      first element is an arrival stamp (received-at µs + position in the request + eventId), so equal
      timestamps come back newest-arrival first, and the same durable row always gives the same member;
    * "a:<sessionId>" holds a session's anonymous events; `u:<userId>:sessions` the user's newest sessions
      (scored by arrival) and `s:<sessionId>:users` the users seen in a session. A user's keys also hold the
      anonymous events of their recent sessions (session stitching), copied when the user first shows up in
      the session and added as later anonymous events arrive.

    One Lua call per PutEvents request, so a reader never sees half a batch. When Redis is unreachable, the
    group gets a backlog (the lowest events.id not mirrored); reads of that group come from `fallback` (the
    durable table) until a later call has replayed the rows since then, REPLAY_BATCH at a time.
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
        self._script = client.register_script(_RECORD_LUA)
        self._lock = threading.Lock()
        self._replaying = threading.Lock()
        self.backlog: dict[str, int] = {}  # group -> events.id after which rows may be missing from Redis
        self._retry_at: dict[str, float] = {}  # group -> when Redis may be tried again after a failure
        self._late: dict[str, int] = {}  # group -> lowest id marked since the running replay step began
        self.retry_seconds = REPLAY_RETRY_SECONDS
        self.replay_batch = REPLAY_BATCH

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisState:
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5), **kwargs)

    def _key(self, group: str, who: str, ident: str) -> str:
        return f"{self.prefix}{group}:{who}:{ident}"

    def _stamp(self, event: RecentEvent, position: int) -> str:
        if event.event_id is None or event.received_at is None:  # not from a durable row: unique, not replayable
            return f"{time.time_ns() // 1000:017d}{position:03d}-{self._pid}-{next(self._counter)}"
        return f"{round(event.received_at * 1e6):017d}{position:03d}{event.event_id}"

    def _args(self, group: str, user_id: str | None, session_id: str, events: Sequence[RecentEvent]) -> list[Any]:
        arrival = max((e.received_at or 0.0 for e in events), default=0.0) or time.time()
        args: list[Any] = [f"{self.prefix}{group}:", user_id or "", session_id, self.cap, self.ttl,
                           STITCHED_SESSIONS, arrival]
        for position, event in enumerate(events):
            member = orjson.dumps([self._stamp(event, position), event.item_id, event.event_type, event.event_value])
            args += [member, event.timestamp, event.event_type]
        return args

    def record_events(self, dataset_group_arn: str, user_id: str | None, session_id: str,
                      events: Sequence[RecentEvent]) -> None:
        if not events:
            return
        group = dataset_group_arn
        if group in self.backlog and time.monotonic() < self._retry_at.get(group, 0.0):
            self._mark_backlog(group, events)  # Redis failed moments ago: the replay brings these, no waiting
            return
        import redis

        try:
            self._script(args=self._args(group, user_id, session_id, events), client=self.client)
        except redis.RedisError:
            self._retry_at[group] = time.monotonic() + self.retry_seconds
            self._mark_backlog(group, events)
            raise
        if group in self.backlog:
            self._replay(group)

    def recent_events(self, dataset_group_arn: str, user_or_session_id: str,
                      limit_per_type: int = DEFAULT_HISTORY_DEPTH) -> list[RecentEvent]:
        if limit_per_type <= 0:
            return []
        if self.fallback is None:
            return self._recent(dataset_group_arn, user_or_session_id, limit_per_type)
        import redis

        if dataset_group_arn in self.backlog and not self._replay(dataset_group_arn):
            return list(self.fallback.recent_events(dataset_group_arn, user_or_session_id, limit_per_type))
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

    # --- replay of rows stored while Redis was unreachable ------------------------------------------------

    def _mark_backlog(self, group: str, events: Sequence[RecentEvent]) -> None:
        """Remember the lowest events.id of rows Redis did not get (their eventIds are unique per group)."""
        if self.fallback is None:
            return  # no durable table to replay from
        ids = [e.event_id for e in events if e.event_id is not None]
        try:
            lowest = stored.lowest_id(self.fallback.engine, group, ids)
        except Exception as exc:  # noqa: BLE001 - replay everything of the group rather than nothing
            log.warning("could not locate unmirrored events (%s); the group's rows are replayed in full", exc)
            lowest = None
        after = int(lowest) - 1 if lowest is not None and len(ids) == len(events) else 0
        with self._lock:
            self.backlog[group] = min(after, self.backlog.get(group, after))
            self._late[group] = min(after, self._late.get(group, after))  # seen by a replay step under way

    def _replay(self, group: str) -> bool:
        """One bounded replay step if due; True when the group has no backlog left."""
        import redis

        if group not in self.backlog:
            return True
        if time.monotonic() < self._retry_at.get(group, 0.0) or not self._replaying.acquire(blocking=False):
            return False
        try:
            with self._lock:
                start = self.backlog.get(group)
                self._late.pop(group, None)
            if start is None:
                return True
            try:
                last, done = self._replay_step(group, start)
            except redis.RedisError as exc:
                self._retry_at[group] = time.monotonic() + self.retry_seconds
                log.info("Redis still unreachable (%s); %s replays later", exc, group)
                return False
            with self._lock:
                # Rows marked during the step may have committed after its query: they stay in the backlog.
                late = self._late.pop(group, None)
                cursor = None if done else last
                if late is not None:
                    cursor = late if cursor is None else min(cursor, late)
                if cursor is None:
                    self.backlog.pop(group, None)
                    log.warning("replayed the events Redis missed for %s", group)
                else:
                    self.backlog[group] = cursor
            return cursor is None
        finally:
            self._replaying.release()

    def _replay_step(self, group: str, after: int) -> tuple[int, bool]:
        """Mirror up to REPLAY_BATCH durable rows with id > after; (last id mirrored, whether caught up)."""
        rows = stored.events_after(self.fallback.engine, group, after, self.replay_batch)
        done = len(rows) < self.replay_batch
        if not done:  # end on a request boundary, so every request's positions (member stamps) stay the same
            tail = (rows[-1].session_id, rows[-1].user_id, rows[-1].received_at)
            cut = len(rows)
            while cut > 1 and (rows[cut - 1].session_id, rows[cut - 1].user_id, rows[cut - 1].received_at) == tail:
                cut -= 1
            rows = rows[:cut] if cut > 1 else rows
        requests: list[list[Any]] = []
        for row in rows:  # a request's rows are consecutive ids with one (session, user, received_at)
            head = requests[-1][0] if requests else None
            if head is not None and (head.session_id, head.user_id, head.received_at) == (
                    row.session_id, row.user_id, row.received_at):
                requests[-1].append(row)
            else:
                requests.append([row])
        pipe = self.client.pipeline(transaction=False)
        for request in requests:
            first = request[0]
            events = [RecentEvent(r.item_id, r.event_type, r.sent_at, r.event_value, event_id=r.event_id,
                                  received_at=r.received_at) for r in request]
            self._script(args=self._args(group, first.user_id, first.session_id, events), client=pipe)
        if requests:
            pipe.execute()
        return (rows[-1].id if rows else after), done

    def forget_group(self, dataset_group_arn: str) -> None:
        with self._lock:
            self.backlog.pop(dataset_group_arn, None)
            self._late.pop(dataset_group_arn, None)
            self._retry_at.pop(dataset_group_arn, None)
        if self.fallback is not None:
            self.fallback.forget_group(dataset_group_arn)

    def erase_group(self, dataset_group_arn: str) -> None:
        self.clear(dataset_group_arn)
        self.forget_group(dataset_group_arn)

    def clear(self, dataset_group_arn: str) -> int:
        """Remove a dataset group's keys; returns how many. SCAN walks the keyspace ERASE_SCAN keys per call
        (never KEYS, which blocks a big Redis) and each batch found goes in one UNLINK."""
        removed = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=f"{self.prefix}{_glob_escape(dataset_group_arn)}:*",
                                         count=ERASE_SCAN):
            batch.append(key)
            if len(batch) >= ERASE_SCAN:
                removed += int(self.client.unlink(*batch))
                batch = []
        if batch:
            removed += int(self.client.unlink(*batch))
        return removed


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
