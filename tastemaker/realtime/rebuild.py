"""Rebuilding a dataset group's real-time state from the durable `events` table (after a data deletion).

The embedded state is the table itself: this process's cached entries are dropped (other processes re-read
theirs in full within tastemaker.realtime.state.FULL_REFRESH_SECONDS). Redis holds copies: the group's keys
are removed and every remaining row is mirrored again, one PutEvents request (consecutive rows with one
session, user and arrival time) per `record_events` call, so each row gets the member it had before.
"""

from __future__ import annotations

from collections.abc import Sequence

from tastemaker.realtime.state import RealtimeState, RecentEvent
from tastemaker.services import Services
from tastemaker.store import events as stored

BATCH = 5000  # durable rows read per step


def rebuild_group(services: Services, dataset_group_arn: str) -> None:
    """Make the group's real-time state agree with the events table again."""
    from tastemaker.realtime.redis_state import RedisState

    state: RealtimeState = services.realtime.state()
    if not isinstance(state, RedisState):
        state.forget_group(dataset_group_arn)
        return
    state.erase_group(dataset_group_arn)
    after = 0
    while True:
        rows = stored.events_after(services.engine, dataset_group_arn, after, BATCH)
        for request in _requests(rows):
            first = request[0]
            state.record_events(dataset_group_arn, first.user_id, first.session_id, [
                RecentEvent(r.item_id, r.event_type, r.sent_at, r.event_value, event_id=r.event_id,
                            received_at=r.received_at) for r in request])
        if len(rows) < BATCH:
            return
        after = rows[-1].id


def _requests(rows: Sequence[stored.StoredEvent]) -> list[list[stored.StoredEvent]]:
    out: list[list[stored.StoredEvent]] = []
    for row in rows:
        head = out[-1][0] if out else None
        if head is not None and (head.session_id, head.user_id, head.received_at) == (
                row.session_id, row.user_id, row.received_at):
            out[-1].append(row)
        else:
            out.append([row])
    return out
