"""A sessionId shared by many users (a backend that sends a fixed one) must not make reads grow with its events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tastemaker.config import Settings
from tastemaker.control.context import Services
from tastemaker.realtime.events_api import put_events
from tastemaker.realtime.state import EmbeddedState
from tests.realtime.conftest import Group, make_group

SHARED = "fixed-session"


class StepCounter:
    """SQLite virtual-machine steps run on the engine's connections (deterministic work, not time)."""

    def __init__(self) -> None:
        self.steps = 0

    def __call__(self) -> int:
        self.steps += 1
        return 0  # 0: carry on


@pytest.fixture()
def counted(tmp_path: Path) -> Iterator[tuple[Services, StepCounter]]:
    from tastemaker.cli.wiring import build_services

    services = build_services(Settings(data_dir=tmp_path / "data"))
    counter = StepCounter()

    def install(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_progress_handler(counter, 10)

    services.engine.dispose()
    sa.event.listen(services.engine, "connect", install)
    yield services, counter
    services.engine.dispose()


def crowd(g: Group, first: int, users: int) -> None:
    """`users` other users send 10 events each, all with the same sessionId."""
    for n in range(first, first + users):
        put_events(g.ctx, tracking_id=g.tracking_id, session_id=SHARED, user_id=f"other-{n}",
                   event_list=[{"event_type": "click", "item_id": f"crowd-{n}-{j}", "sent_at": 1000.0 + n}
                               for j in range(10)])


def read(services: Services, counter: StepCounter, g: Group, state: EmbeddedState | None = None,
         who: str = "me") -> tuple[int, list[str | None]]:
    state = state or EmbeddedState(services.engine)
    counter.steps = 0
    found = state.recent_events(g.arn, who)
    return counter.steps, [e.item_id for e in found]


def test_a_users_read_does_not_grow_with_the_shared_sessions_events(counted: tuple[Services, StepCounter]) -> None:
    services, counter = counted
    g = make_group(services)
    put_events(g.ctx, tracking_id=g.tracking_id, session_id=SHARED, user_id="me",
               event_list=[{"event_type": "click", "item_id": f"mine-{j}", "sent_at": 2000.0 + j} for j in range(3)])
    crowd(g, 0, 100)
    small, mine = read(services, counter, g)
    assert mine == ["mine-2", "mine-1", "mine-0"]
    as_session = {who: read(services, counter, g, who=who)[0] for who in (SHARED, "other-99")}
    state = EmbeddedState(services.engine)
    read(services, counter, g, state)
    crowd(g, 100, 900)  # ten times the session's events
    large, mine = read(services, counter, g)
    assert mine == ["mine-2", "mine-1", "mine-0"]  # still the user's own recent events
    assert large < 2 * small, (small, large)  # was about ten times as much work
    probed, mine = read(services, counter, g, state)  # a cached user after a flood of shared-session events
    assert mine == ["mine-2", "mine-1", "mine-0"]
    assert probed < 3 * small, (small, probed)
    quiet, mine = read(services, counter, g, state)  # nothing new: the probe moved past the others' rows
    assert mine == ["mine-2", "mine-1", "mine-0"]
    assert quiet < small, (small, quiet)
    for who, before in as_session.items():  # the session's id itself, and another user of it, are bounded too
        steps, _ = read(services, counter, g, who=who)
        assert steps < 2 * before, (who, before, steps)


def test_stitching_still_adds_the_sessions_recent_anonymous_events(counted: tuple[Services, StepCounter]) -> None:
    services, counter = counted
    g = make_group(services)
    crowd(g, 0, 50)
    put_events(g.ctx, tracking_id=g.tracking_id, session_id=SHARED,
               event_list=[{"event_type": "click", "item_id": "browsed", "sent_at": 3000.0}])
    put_events(g.ctx, tracking_id=g.tracking_id, session_id=SHARED, user_id="me",
               event_list=[{"event_type": "click", "item_id": "bought", "sent_at": 3001.0}])
    assert read(services, counter, g)[1] == ["bought", "browsed"]
