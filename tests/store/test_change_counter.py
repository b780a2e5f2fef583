"""The change counter (store/changes.py) and the serving change watch that reads it (serving/deployments.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from tastemaker.serving.deployments import ChangeWatch
from tastemaker.store import changes, resources
from tastemaker.store.db import read_only
from tastemaker.store.status import Status
from tests.conftest import STORES, store_engine

ARN = "arn:aws:personalize:us-east-1:000000000000:{}/{}"


@pytest.fixture(params=STORES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    yield from store_engine(request, tmp_path, clear=("resources",))


def counter(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return changes.read(conn)


def create(engine: sa.Engine, kind: str, name: str) -> str:
    arn = ARN.format(kind.replace("_", "-"), name)
    with engine.begin() as conn:
        resources.insert(conn, arn=arn, kind=kind, body={"name": name}, status=Status.CREATE_PENDING)
    return arn


def test_every_change_to_a_watched_row_moves_the_counter_once(engine: sa.Engine) -> None:
    for kind in changes.WATCHED_KINDS:
        before = counter(engine)
        arn = create(engine, kind, f"c-{kind}")
        assert counter(engine) == before + 1
        with engine.begin() as conn:
            resources.update(conn, arn, status=Status.CREATE_IN_PROGRESS)
        assert counter(engine) == before + 2
        with engine.begin() as conn:
            resources.delete(conn, arn)
        assert counter(engine) == before + 3


def test_other_rows_and_rolled_back_changes_leave_it_alone(engine: sa.Engine) -> None:
    before = counter(engine)
    arn = create(engine, "dataset_group", "g")
    with engine.begin() as conn:
        resources.update(conn, arn, status=Status.CREATE_IN_PROGRESS)
        resources.delete(conn, arn)
    assert counter(engine) == before
    with pytest.raises(RuntimeError), engine.begin() as conn:
        resources.insert(conn, arn=ARN.format("campaign", "gone"), kind="campaign", body={}, status="ACTIVE")
        raise RuntimeError("roll back")
    assert counter(engine) == before
    with engine.connect() as conn:
        assert resources.find(conn, ARN.format("campaign", "gone")) is None


class Services(SimpleNamespace):
    """What the change watch uses: the engines, and the tracker caches it drops when a tracker changes."""

    def __init__(self, engine: sa.Engine) -> None:
        self.reloads: list[str] = []
        super().__init__(engine=engine, read_engine=read_only(engine),
                         realtime=SimpleNamespace(targets=SimpleNamespace(reload=lambda _s: self.reloads.append("targets"))),
                         serving=SimpleNamespace(trackers=SimpleNamespace(forget_all=lambda: self.reloads.append("trackers"))))


def test_the_watch_reads_the_stamps_only_when_the_counter_moved(engine: sa.Engine,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[Any] = []
    versions = resources.versions
    monkeypatch.setattr(resources, "versions", lambda conn, kinds: scans.append(kinds) or versions(conn, kinds))
    services = Services(engine)
    campaign = create(engine, "campaign", "c")
    watch = ChangeWatch()
    watch.poll(services)  # type: ignore[arg-type]
    assert watch.stamps[campaign][0] == Status.CREATE_PENDING
    first = watch.polled_at
    for _ in range(3):
        watch.poll(services)  # type: ignore[arg-type]
    assert len(scans) == 1  # nothing changed: one primary-key read per poll
    assert watch.polled_at > first  # ... which still counts as fresh
    with engine.begin() as conn:
        resources.update(conn, campaign, status=Status.CREATE_IN_PROGRESS)
    watch.poll(services)  # type: ignore[arg-type]
    assert len(scans) == 2
    assert watch.stamps[campaign][0] == Status.CREATE_IN_PROGRESS
    assert services.reloads == []
    tracker = create(engine, "event_tracker", "t")
    watch.poll(services)  # type: ignore[arg-type]
    assert tracker in watch.stamps
    assert services.reloads == ["targets", "trackers"]  # a new tracker is seen by PutEvents and serving at once
    create(engine, "dataset_group", "g")  # not kept by serving: no re-read
    watch.poll(services)  # type: ignore[arg-type]
    assert len(scans) == 3


def test_a_poll_does_not_wait_for_a_writer(engine: sa.Engine) -> None:
    """Every serving process polls the change counter 20 times a second: on SQLite a poll that took the write lock
    (BEGIN IMMEDIATE) made every writer -- CreateCampaign, the deploy job's status writes -- queue behind the polls
    (SQLite's busy handler sleeps 1, 2, 5, 10 ms... between tries). A poll reads the last committed state while a
    write transaction is open, and leaves it uncommitted changes unseen."""
    services = Services(engine)
    campaign = create(engine, "campaign", "c")
    watch = ChangeWatch()
    with engine.begin() as conn:
        resources.update(conn, campaign, status=Status.CREATE_IN_PROGRESS)
        watch.poll(services)  # type: ignore[arg-type]  (before: "database is locked" after the 30 s busy timeout)
        assert watch.stamps[campaign][0] == Status.CREATE_PENDING
    watch.poll(services)  # type: ignore[arg-type]
    assert watch.stamps[campaign][0] == Status.CREATE_IN_PROGRESS


def test_only_campaign_recommender_filter_and_tracker_arns_take_the_counter_lock() -> None:
    assert all(changes.watched_arn(ARN.format(kind.replace("_", "-"), "x")) for kind in changes.WATCHED_KINDS)
    assert not changes.watched_arn(ARN.format("dataset-group", "filter"))
    assert not changes.watched_arn(ARN.format("solution", "campaign/1"))


def test_writers_of_watched_rows_in_opposite_orders_do_not_deadlock(engine: sa.Engine) -> None:
    """Two transactions that change the same two campaigns in opposite orders: both commit (the counter, locked
    first, orders them) instead of one being killed as a deadlock victim."""
    import threading

    first, second = create(engine, "campaign", "one"), create(engine, "campaign", "two")
    errors: list[BaseException] = []
    barrier = threading.Barrier(2, timeout=10)

    def writer(order: tuple[str, str]) -> None:
        try:
            with engine.begin() as conn:
                resources.update(conn, order[0], changes={"x": 1})
                try:
                    barrier.wait(timeout=0.5)  # both inside their first change at once, when the lock order allows
                except threading.BrokenBarrierError:
                    pass
                resources.update(conn, order[1], changes={"x": 2})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    before = counter(engine)
    threads = [threading.Thread(target=writer, args=(o,)) for o in ((first, second), (second, first))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert counter(engine) == before + 4
