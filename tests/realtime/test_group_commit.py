"""The events writer: one committer thread groups concurrent requests, answers each after its commit, and isolates
a failing request; PutEvents on the event loop awaits its commit without holding a thread."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from tastemaker.realtime.events_api import put_events
from tastemaker.realtime.inline import NotWarm, inline
from tastemaker.services import Services
from tastemaker.store.tables import events
from tests.realtime.conftest import make_group


def row(group: str, item: str, event_id: str | None = None) -> dict[str, Any]:
    return {"dataset_group_arn": group, "event_id": event_id or uuid.uuid4().hex, "session_id": "s", "user_id": "u",
            "item_id": item, "event_type": "click", "event_value": None, "sent_at": 1.0, "record": {"ITEM_ID": item},
            "received_at": 2.0}


def count(services: Services, group: str) -> int:
    with services.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)
                                .where(events.c.dataset_group_arn == group)).scalar_one())


def test_each_request_is_answered_after_its_rows_are_committed_and_requests_share_commits(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    from tastemaker.store import events as store_events

    writer = services.realtime.writer()
    group = f"arn:aws:personalize:us-east-1:000000000000:dataset-group/g-{uuid.uuid4().hex[:6]}"
    commits: list[int] = []
    real = store_events.insert_requests

    def slow_insert(raw: Any, postgres: bool, plain: list[Any], returning: list[Any]) -> list[set[str]]:
        time.sleep(0.05)  # a slow disk: requests arriving meanwhile wait for the next commit, together
        commits.append(len(plain) + len(returning))
        return real(raw, postgres, plain, returning)

    monkeypatch.setattr(store_events, "insert_requests", slow_insert)
    seen: list[int] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        writer.write([row(group, f"i{k}-{j}") for j in range(10)], want_inserted=False)
        with lock:
            seen.append(count(services, group))  # what another connection sees once this request is answered

    threads = [threading.Thread(target=client, args=(k,)) for k in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count(services, group) == 200
    assert min(seen) >= 10  # no request was answered before its own rows were visible to others
    assert sum(commits) == 20 and len(commits) < 20  # grouped: fewer commits than requests


def test_a_failing_request_fails_alone(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = services.realtime.writer()
    group = f"arn:aws:personalize:us-east-1:000000000000:dataset-group/g-{uuid.uuid4().hex[:6]}"
    gate = threading.Event()
    real_run = writer._commit_all

    def held(batch: list[Any]) -> None:
        gate.wait(5)  # let all three requests queue behind the first commit
        real_run(batch)

    monkeypatch.setattr(writer, "_commit_all", held)
    bad = row(group, "bad")
    bad["session_id"] = None  # NOT NULL: the database refuses this request's row
    futures = [writer.submit([row(group, "a")], False), writer.submit([bad], False),
               writer.submit([row(group, "b")], False)]
    gate.set()
    assert futures[0].result(10) is None and futures[2].result(10) is None
    with pytest.raises(Exception, match="(?i)null"):
        futures[1].result(10)
    assert count(services, group) == 2


def test_put_events_on_the_event_loop_awaits_its_commit(services: Services) -> None:
    g = make_group(services)
    ev = [{"event_id": uuid.uuid4().hex, "event_type": "click", "item_id": "i1", "sent_at": 1_700_000_000.0}]
    with pytest.raises(NotWarm), inline():  # first call: the trackingId lookup reads the database
        put_events(g.ctx, tracking_id=g.tracking_id, session_id="s", user_id="u", event_list=ev)
    assert count(services, g.arn) == 0  # refused before anything was written: the pool reruns it
    put_events(g.ctx, tracking_id=g.tracking_id, session_id="s", user_id="u", event_list=ev)  # warms the lookup
    assert count(services, g.arn) == 1

    async def on_the_loop() -> tuple[Any, int]:
        with inline():
            answer = put_events(g.ctx, tracking_id=g.tracking_id, session_id="s", user_id="u",
                                event_list=[dict(ev[0], event_id=uuid.uuid4().hex)])
        assert asyncio.iscoroutine(answer)  # the request holds no thread while the commit is pending
        return await answer, count(services, g.arn)

    assert asyncio.run(on_the_loop()) == ({}, 2)
