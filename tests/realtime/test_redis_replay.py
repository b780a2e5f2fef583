"""Events stored while Redis was unreachable reach Redis once it answers again (against a real Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from tastemaker.config import Settings
from tastemaker.realtime.redis_state import RedisState
from tastemaker.realtime.state import EmbeddedState, get_state
from tastemaker.services import Services
from tests.realtime.conftest import Group, make_group
from tests.realtime.test_state_contract import items, send

pytestmark = pytest.mark.redis
DEAD = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1, socket_timeout=1)


@pytest.fixture
def setup(tmp_path: Path, redis_url: str) -> Iterator[tuple[Services, Group, RedisState]]:
    from tastemaker.cli.wiring import build_services

    services = build_services(replace(Settings(data_dir=tmp_path / "data"), redis_url=redis_url))
    group = make_group(services)
    state = get_state(services)
    assert isinstance(state, RedisState)
    state.retry_seconds = 0.0  # retry at every call (the default waits a second between tries)
    yield services, group, state
    state.clear(group.arn)
    services.engine.dispose()


def members(state: RedisState, group: str, who: str, ident: str, client: redis.Redis | None = None) -> list[bytes]:
    return (client or state.client).zrange(f"{state._key(group, who, ident)}:t:click", 0, -1)


def test_events_stored_during_an_outage_are_replayed_once(setup: tuple[Services, Group, RedisState]) -> None:
    services, group, state = setup
    live = state.client
    send(group, "s1", "u", ("before", "click", 1.0))
    state.client = DEAD  # Redis goes away
    send(group, "s1", "u", ("during-1", "click", 2.0), ("during-2", "click", 2.0))
    send(group, "s2", None, ("anon", "click", 3.0))
    send(group, "s2", "u", ("stitch", "click", 4.0))  # links s2 to u while Redis is down
    assert group.arn in state.backlog
    expected = ["stitch", "anon", "during-2", "during-1", "before"]
    assert items(state.recent_events(group.arn, "u")) == expected  # from the durable table
    assert len(members(state, group.arn, "u", "u", client=live)) == 1  # Redis itself missed them
    state.client = live  # Redis is back: the next call replays
    assert items(state.recent_events(group.arn, "u")) == expected
    assert group.arn not in state.backlog
    assert items(state._recent(group.arn, "u", 100)) == expected  # now answered by Redis itself
    assert items(state._recent(group.arn, "s2", 100)) == ["stitch", "anon"]
    assert len(members(state, group.arn, "u", "u")) == 5  # "before" was not added a second time
    state.backlog[group.arn] = 0  # replaying rows Redis already holds changes nothing
    state.recent_events(group.arn, "u")
    assert len(members(state, group.arn, "u", "u")) == 5 and len(members(state, group.arn, "s", "s1")) == 3
    embedded = EmbeddedState(services.engine)
    for ident in ("u", "s1", "s2"):
        assert state._recent(group.arn, ident, 100) == embedded.recent_events(group.arn, ident)


def test_replay_is_bounded_and_reads_stay_correct_meanwhile(setup: tuple[Services, Group, RedisState]) -> None:
    _services, group, state = setup
    live = state.client
    state.client = DEAD
    for n in range(7):
        send(group, f"s{n}", "u", (f"a{n}", "click", float(n)), (f"b{n}", "click", float(n)))
    state.client = live
    state.replay_batch = 5  # five rows a step, cut back to the last whole request: four rows (two requests)
    expected = [f"{x}{n}" for n in range(6, -1, -1) for x in ("b", "a")]
    steps = 0
    while group.arn in state.backlog:
        assert items(state.recent_events(group.arn, "u")) == expected  # durable answer until replay finished
        steps += 1
        assert steps <= 4
    assert steps == 4  # 14 rows: 4 + 4 + 4 + 2
    assert items(state._recent(group.arn, "u", 100)) == expected


def test_reads_fall_back_without_waiting_for_redis_while_a_backlog_is_open(
        setup: tuple[Services, Group, RedisState]) -> None:
    _services, group, state = setup
    live = state.client
    state.client = DEAD
    send(group, "s", "u", ("a", "click", 1.0))
    state.retry_seconds = 3600.0
    state.recent_events(group.arn, "u")  # a failed replay try: no other try for an hour
    state.client = live
    send(group, "s", "u", ("b", "click", 2.0))  # not written live: it waits for the replay, in order
    assert items(state.recent_events(group.arn, "u")) == ["b", "a"]
    assert members(state, group.arn, "u", "u") == []
    state._retry_at.clear()
    assert items(state.recent_events(group.arn, "u")) == ["b", "a"]
    assert len(members(state, group.arn, "u", "u")) == 2 and group.arn not in state.backlog


def test_rows_marked_while_a_replay_step_runs_are_not_dropped(setup: tuple[Services, Group, RedisState]) -> None:
    _services, group, state = setup
    live = state.client
    state.client = DEAD
    send(group, "s", "u", ("a", "click", 1.0))
    state.client = live
    original = state._replay_step

    def step_then_another_request(group_arn: str, after: int) -> tuple[int, bool]:
        result = original(group_arn, after)  # "b" below commits after this step read the table
        state._retry_at[group_arn] = float("inf")  # as if Redis had just failed again: "b" is only marked
        send(group, "s", "u", ("b", "click", 2.0))
        return result

    state._replay_step = step_then_another_request  # type: ignore[method-assign]
    state.recent_events(group.arn, "u")
    state._replay_step = original  # type: ignore[method-assign]
    assert group.arn in state.backlog  # the step caught up with what it read, but "b" came after
    assert items(state._recent(group.arn, "u", 100)) == ["a"]
    state._retry_at.clear()
    assert items(state.recent_events(group.arn, "u")) == ["b", "a"]
    assert group.arn not in state.backlog and items(state._recent(group.arn, "u", 100)) == ["b", "a"]
