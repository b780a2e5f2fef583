"""One contract for the real-time state: the embedded (SQL) and Redis implementations answer alike."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tastemaker.config import Settings
from tastemaker.realtime.events_api import put_events
from tastemaker.realtime.redis_state import RedisState
from tastemaker.realtime.state import EmbeddedState, RealtimeState, RecentEvent, get_state
from tastemaker.services import Services
from tests.realtime.conftest import Group, make_group


@pytest.fixture(params=["embedded", "embedded-postgresql", pytest.param("redis", marks=pytest.mark.redis)])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Group, RealtimeState]]:
    from tastemaker.cli.wiring import build_services

    settings = Settings(data_dir=tmp_path / "data")
    if request.param == "embedded-postgresql":
        settings = replace(settings, db_url=request.getfixturevalue("postgres_url"))
    if request.param == "redis":
        settings = replace(settings, redis_url=request.getfixturevalue("redis_url"))
    services: Services = build_services(settings)
    group = make_group(services)
    state = get_state(services)
    assert isinstance(state, RedisState if request.param == "redis" else EmbeddedState)
    yield group, state
    if isinstance(state, RedisState):
        state.clear(group.arn)
    services.engine.dispose()


def send(group: Group, session: str, user: str | None, *events: tuple[str, str, float],
         value: float | None = None) -> None:
    put_events(group.ctx, tracking_id=group.tracking_id, session_id=session, user_id=user, event_list=[
        {"event_type": etype, "item_id": item, "sent_at": ts, **({"event_value": value} if value is not None else {})}
        for item, etype, ts in events])


def items(events: list[RecentEvent]) -> list[str | None]:
    return [e.item_id for e in events]


def test_newest_first_by_timestamp_then_arrival(setup: tuple[Group, RealtimeState]) -> None:
    group, state = setup
    send(group, "s1", "u1", ("a", "click", 30.0), ("b", "click", 10.0))
    send(group, "s1", "u1", ("c", "click", 20.0), ("d", "click", 30.0))
    assert items(state.recent_events(group.arn, "u1")) == ["d", "a", "c", "b"]
    assert state.recent_events(group.arn, "u1")[0] == RecentEvent("d", "click", 30.0, None)


def test_user_and_session_histories_union_once(setup: tuple[Group, RealtimeState]) -> None:
    group, state = setup
    send(group, "anon", None, ("a", "click", 1.0))
    send(group, "anon", "u2", ("b", "click", 2.0))
    send(group, "other-session", "u2", ("c", "click", 3.0))
    send(group, "same", "same", ("d", "click", 4.0))
    assert items(state.recent_events(group.arn, "anon")) == ["b", "a"]
    assert items(state.recent_events(group.arn, "u2")) == ["c", "b", "a"]  # "a": stitched from session anon
    assert items(state.recent_events(group.arn, "same")) == ["d"]  # one event, though listed under both ids
    assert state.recent_events(group.arn, "nobody") == []


def test_limit_applies_per_event_type(setup: tuple[Group, RealtimeState]) -> None:
    group, state = setup
    send(group, "s", "u", *[(f"c{i}", "click", float(i)) for i in range(10)])
    send(group, "s", "u", ("p1", "purchase", 0.5), value=9.5)
    recent = state.recent_events(group.arn, "u", limit_per_type=3)
    assert items(recent) == ["c9", "c8", "c7", "p1"]
    assert recent[-1] == RecentEvent("p1", "purchase", 0.5, 9.5)
    assert state.recent_events(group.arn, "u", limit_per_type=0) == []


def test_groups_are_separate_and_duplicates_not_recorded(setup: tuple[Group, RealtimeState]) -> None:
    group, state = setup
    put_events(group.ctx, tracking_id=group.tracking_id, session_id="s", user_id="u", event_list=[
        {"event_type": "click", "item_id": "a", "sent_at": 1.0, "event_id": "e1"}])
    put_events(group.ctx, tracking_id=group.tracking_id, session_id="s", user_id="u", event_list=[
        {"event_type": "click", "item_id": "b", "sent_at": 2.0, "event_id": "e1"}])
    assert items(state.recent_events(group.arn, "u")) == ["a"]
    assert state.recent_events(group.arn.replace("dataset-group/", "dataset-group/x"), "u") == []


def test_events_after_a_read_show_up_in_the_next_read(setup: tuple[Group, RealtimeState]) -> None:
    group, state = setup
    send(group, "s", "u", *[(f"a{i}", "click", float(i)) for i in range(5)])
    assert items(state.recent_events(group.arn, "u", limit_per_type=3)) == ["a4", "a3", "a2"]
    send(group, "s", "u", ("late", "click", 2.5), ("new", "click", 9.0), ("b1", "buy", 1.0))
    assert items(state.recent_events(group.arn, "u", limit_per_type=3)) == ["new", "a4", "a3", "b1"]
    assert items(state.recent_events(group.arn, "s", limit_per_type=10)) == [
        "new", "a4", "a3", "late", "a2", "b1", "a1", "a0"]  # b1 and a1 share a timestamp: later arrival first
    assert items(state.recent_events(group.arn, "u", limit_per_type=1)) == ["new", "b1"]


def test_a_users_reads_include_the_anonymous_events_of_their_sessions(setup: tuple[Group, RealtimeState]) -> None:
    group, state = setup
    send(group, "s1", None, ("a1", "click", 1.0), ("a2", "click", 2.0))
    send(group, "s2", None, ("never-linked", "click", 3.0))
    assert items(state.recent_events(group.arn, "u")) == []  # read (and cached) before the user shows up
    send(group, "s1", "u", ("b", "click", 4.0))  # the stitch: s1 belongs to u from now on
    assert items(state.recent_events(group.arn, "u")) == ["b", "a2", "a1"]
    send(group, "s1", None, ("a3", "click", 5.0))  # anonymous again in the same session (logged out)
    send(group, "s3", "v", ("v1", "click", 6.0))  # another user's own event stays theirs
    send(group, "s1", "v", ("v2", "click", 7.0))  # v shows up in s1 too: s1's anonymous events are v's as well
    assert items(state.recent_events(group.arn, "u")) == ["a3", "b", "a2", "a1"]
    assert items(state.recent_events(group.arn, "v")) == ["v2", "v1", "a3", "a2", "a1"]
    assert items(state.recent_events(group.arn, "s1")) == ["v2", "a3", "b", "a2", "a1"]
    assert items(state.recent_events(group.arn, "s2")) == ["never-linked"]
    assert items(state.recent_events(group.arn, "u", limit_per_type=2)) == ["a3", "b"]


def test_stitching_reaches_only_a_users_newest_sessions(setup: tuple[Group, RealtimeState]) -> None:
    from tastemaker.realtime.state import STITCHED_SESSIONS

    group, state = setup
    send(group, "old", None, ("anon-old", "click", 1.0))
    send(group, "old", "u", ("u-old", "click", 2.0))
    for n in range(STITCHED_SESSIONS):  # the user's later sessions push "old" out of the newest ones
        send(group, f"new{n}", "u", (f"u{n}", "click", 10.0 + n))
    send(group, "old", None, ("anon-late", "click", 100.0))
    recent = items(state.recent_events(group.arn, "u"))
    assert "anon-late" not in recent and "u-old" in recent


def test_unreachable_redis_neither_fails_ingestion_nor_reads(tmp_path: Path) -> None:
    from tastemaker.cli.wiring import build_services

    services = build_services(Settings(data_dir=tmp_path / "data", redis_url="redis://127.0.0.1:1/0"))
    group = make_group(services)
    send(group, "s", "u", ("a", "click", 1.0))  # stored durably; the cache write fails and is logged
    state = get_state(services)
    assert isinstance(state, RedisState)
    assert items(state.recent_events(group.arn, "u")) == ["a"]  # answered from the database
    services.engine.dispose()


def test_postgres_row_committed_below_a_seen_id_shows_up(tmp_path: Path, postgres_url: str) -> None:
    """PostgreSQL assigns ids before commit: a transaction holding a lower id can commit after a higher id was
    read. The cached probe must still return that row (a plain "id > newest seen" probe would not)."""
    from tastemaker.cli.wiring import build_services

    services = build_services(Settings(data_dir=tmp_path / "data", db_url=postgres_url))
    try:
        group = make_group(services)
        state = EmbeddedState(services.engine)
        send(group, "s", "u", ("first", "click", 1.0))
        slow = services.engine.raw_connection()  # a writer that takes its id now and commits later
        cursor = slow.cursor()
        cursor.execute("INSERT INTO events (dataset_group_arn, event_id, session_id, user_id, item_id, event_type, "
                       "event_value, sent_at, record, received_at) VALUES (%s, 'slow-1', 's', 'u', 'slow', 'click', "
                       "NULL, 2.0, '{}', 0) RETURNING id", (group.arn,))
        slow_id = cursor.fetchone()[0]
        send(group, "s", "u", ("after", "click", 3.0))
        assert items(state.recent_events(group.arn, "u")) == ["after", "first"]
        assert items(state.recent_events(group.arn, "s")) == ["after", "first"]
        with services.engine.connect() as conn:
            newest = conn.exec_driver_sql("SELECT MAX(id) FROM events").scalar_one()
        assert slow_id < newest  # the situation under test: the late row's id is below one already read
        slow.commit()
        slow.close()
        assert items(state.recent_events(group.arn, "u")) == ["after", "slow", "first"]
        assert items(state.recent_events(group.arn, "s")) == ["after", "slow", "first"]
        assert items(state.recent_events(group.arn, "u")) == ["after", "slow", "first"]  # no duplicates
    finally:
        services.engine.dispose()
