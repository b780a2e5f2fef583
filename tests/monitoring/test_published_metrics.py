"""Metrics published to the metadata store (tastemaker.monitoring.published, store/metric_points.py): the
statistic sets of several processes add up per series and minute, a publish writes only what changed and never
counts twice, a reader sees its own process live, and rows past the retention window are pruned."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tastemaker.monitoring.metrics import RETENTION_MINUTES, Recorder, Series
from tastemaker.monitoring.published import Publisher, series
from tastemaker.store import db, metric_points


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    url = f"sqlite:///{tmp_path / 'meta.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    eng = db.create_engine(url)
    db.upgrade(eng)
    yield eng
    eng.dispose()


def _read(engine: sa.Engine, campaign: str, publisher: Publisher | None = None) -> Series | None:
    with engine.connect() as conn:
        found = [s for s in series(conn, time.time() - 3600, publisher=publisher or Publisher(engine, Recorder()))
                 if s.value == campaign]
    return found[0] if found else None


def _window(engine: sa.Engine, campaign: str, publisher: Publisher | None = None) -> list[float]:
    found = _read(engine, campaign, publisher)
    assert found is not None
    (window,) = found.minutes.values()
    return window


def test_the_figures_of_several_processes_add_up_once(engine: sa.Engine) -> None:
    campaign = f"arn:aws:personalize:us-east-1:000000000000:campaign/c-{uuid.uuid4().hex[:8]}"
    now = time.time()
    a, b = Recorder(), Recorder()
    for k in range(3):
        a.request(now, "GetRecommendations", {"campaign_arn": campaign}, 200, 2.0 + k)  # latency 2, 3, 4
    for k in range(5):
        b.request(now, "GetRecommendations", {"campaign_arn": campaign}, 404 if k == 0 else 200, 1.5)
    b.request(now, "GetRecommendations", {"campaign_arn": campaign}, 500, 9.0)
    pa, pb = Publisher(engine, a), Publisher(engine, b)
    assert pa.publish(now) == 1 and pb.publish(now) == 1
    assert pa.publish(now) == 0 and pb.publish(now + 1) == 0  # nothing changed: nothing written

    found = _read(engine, campaign)
    assert found is not None and found.dimension == "CampaignArn"
    (window,) = found.minutes.values()
    assert window == [9, 1, 1, 7, 2.0 + 3.0 + 4.0 + 4 * 1.5, 1.5, 4.0]  # count, 4xx, 5xx, n, sum, min, max

    a.request(now, "GetRecommendations", {"campaign_arn": campaign}, 200, 0.5)
    assert pa.publish(now) == 1  # the changed minute only, replacing a's row: still counted once
    window = _window(engine, campaign)
    assert window[:4] == [10, 1, 1, 8] and window[5] == 0.5

    a.job(now, "import", "arn:dataset", failed=True, seconds=3.0)  # a failed job: no latency figures
    pa.publish(now)
    with engine.connect() as conn:
        jobs = [s for s in series(conn, now - 3600, publisher=Publisher(engine, Recorder())) if s.kind == "job"
                and s.value == "arn:dataset"]
    assert [w[:4] for s in jobs for w in s.minutes.values()] == [[1, 1, 0, 0]]


def test_a_reader_sees_its_own_process_live_and_the_others_as_published(engine: sa.Engine) -> None:
    campaign = f"c-{uuid.uuid4().hex[:8]}"
    now = time.time()
    mine, other = Recorder(), Recorder()
    me, them = Publisher(engine, mine), Publisher(engine, other)
    other.request(now, "GetRecommendations", {"campaign_arn": campaign}, 200, 1.0)
    mine.request(now, "GetRecommendations", {"campaign_arn": campaign}, 200, 1.0)
    assert _window(engine, campaign, me)[0] == 1
    them.publish(now)
    me.publish(now)  # its own rows are skipped by its own reads (it adds its live figures instead)
    mine.request(now, "GetRecommendations", {"campaign_arn": campaign}, 200, 1.0)
    assert _window(engine, campaign, me)[0] == 3
    assert _window(engine, campaign)[0] == 2  # what is published


def test_rows_older_than_the_retention_window_are_pruned(engine: sa.Engine) -> None:
    campaign = f"c-{uuid.uuid4().hex[:8]}"
    now = time.time()
    old = now - (RETENTION_MINUTES + 5) * 60
    recorder = Recorder()
    publisher = Publisher(engine, recorder)
    recorder.request(old, "GetRecommendations", {"campaign_arn": campaign}, 200, 1.0)
    publisher.publish(old)
    recorder.request(now, "GetRecommendations", {"campaign_arn": campaign}, 200, 1.0)
    publisher.publish(now)
    with engine.connect() as conn:
        assert {p.minute for p in metric_points.totals(conn, 0) if p.value == campaign} == {
            int(old) // 60 * 60, int(now) // 60 * 60}
    assert publisher.prune(now) >= 1
    with engine.connect() as conn:
        assert {p.minute for p in metric_points.totals(conn, 0) if p.value == campaign} == {int(now) // 60 * 60}
