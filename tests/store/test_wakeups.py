"""Store wake-ups (store/wakeups.py) and the idle change watch that sleeps on them (serving/deployments.py).

"Another engine" stands for another process or replica: its own pool and connections to the same database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tastemaker.serving import deployments
from tastemaker.serving.deployments import ChangeWatch
from tastemaker.store import changes, db, resources
from tastemaker.store.status import Status
from tastemaker.store.wakeups import CHANNELS, wakeups
from tests.conftest import STORES, store_engine
from tests.store.test_change_counter import Services, create

WAIT = 30.0  # generous bound on something that normally takes milliseconds (never a speed check)


@pytest.fixture(params=STORES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    yield from store_engine(request, tmp_path, clear=("resources",))


@pytest.fixture()
def other(engine: sa.Engine) -> Iterator[sa.Engine]:
    found = db.create_engine(engine.url.render_as_string(hide_password=False))
    yield found
    found.dispose()


def until(condition: Callable[[], object], seconds: float = WAIT) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def statements(engine: sa.Engine) -> list[str]:
    """Every statement `engine` (and its read-only copies) sends from now on."""
    sent: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_rest: sent.append(sql))
    return sent


def test_a_commit_through_another_engine_wakes_the_subscribers_of_its_channel(engine: sa.Engine,
                                                                               other: sa.Engine) -> None:
    store = wakeups(engine)
    woke = {channel: threading.Event() for channel in CHANNELS}
    for channel, event in woke.items():
        store.subscribe(channel, event.set)
    assert until(lambda: store.live)
    for channel, write in (("changes", changes.bump), ("jobs", None), ("keys", None)):
        woke[channel].clear()
        with other.begin() as conn:
            if write is not None:
                write(conn)
            elif channel == "jobs":
                from tastemaker.store import queue

                queue.enqueue(conn, queue.JobKind.ACTIVATE, "arn:aws:personalize:us-east-1:000000000000:x/y")
            else:
                from tastemaker.store import access_keys

                access_keys.root(conn)
                access_keys.update(conn, access_keys.ROOT_ID, enabled=True)
        assert woke[channel].wait(WAIT), f"a commit on {channel} woke nobody"


def test_sqlite_data_version_moves_with_another_connections_commit_only(engine: sa.Engine,
                                                                         other: sa.Engine) -> None:
    store = wakeups(engine)
    if engine.dialect.name != "sqlite":
        assert store.version() is None  # PostgreSQL: no synchronous proof; the watch reads the counter
        return
    before = store.version()
    with other.connect() as conn:
        conn.execute(sa.text("SELECT 1"))  # a read commits nothing
    assert store.version() == before
    create(other, "dataset_group", "g")
    assert store.version() != before


@pytest.mark.postgres
def test_a_dropped_listen_connection_is_reopened_and_every_subscriber_re_reads(tmp_path: Path,
                                                                                postgres_url: str) -> None:
    """A NOTIFY sent while the listener is down is lost: on reconnecting it wakes everyone, who re-read."""
    engine = db.create_engine(postgres_url)
    try:
        store = wakeups(engine)
        woke = threading.Event()
        store.subscribe("changes", woke.set)
        assert until(lambda: store.live)
        woke.clear()
        with engine.connect() as conn:  # kill every LISTEN connection of this database (other tests' reconnect too)
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                                 "datname = current_database() AND query LIKE 'LISTEN tastemaker_%' "
                                 "AND pid <> pg_backend_pid()"))
        assert woke.wait(WAIT)  # told it went down (polling meanwhile), then again when it is back
        assert until(lambda: store.live)
        woke.clear()
        with engine.begin() as conn:
            changes.bump(conn)
        assert woke.wait(WAIT)  # listening again
    finally:
        engine.dispose()


def test_an_idle_change_watch_sends_no_statement_yet_sees_a_change_and_a_request_reads_its_writes(
        engine: sa.Engine, other: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deployments, "IDLE_SECONDS", 0.2, raising=False)
    services = Services(engine)
    watch = ChangeWatch()
    watch.current(services)  # type: ignore[arg-type]  (a request: starts the thread)
    until(lambda: getattr(watch, "_idle", False), 10.0)
    sent = statements(engine)
    time.sleep(1.0)
    assert sent == []  # before: 20 counter reads a second, each a transaction, whether or not anything changed

    arn = create(other, "campaign", "c")  # another replica's change, while no request comes
    assert until(lambda: arn in watch.stamps), "an idle watch did not notice a change committed elsewhere"

    with other.begin() as conn:
        resources.update(conn, arn, status=Status.CREATE_IN_PROGRESS)
    time.sleep(deployments.FRESH_SECONDS)  # what the control plane waits before it answers such a change
    assert watch.current(services)[arn][0] == Status.CREATE_IN_PROGRESS  # type: ignore[arg-type]  (read-your-writes)
