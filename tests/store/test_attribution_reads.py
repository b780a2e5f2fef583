"""The console's reads of a metric attribution's stored figures on SQLite and PostgreSQL (mandatory under
CI=true): totals summed by the database per metric, event type and source, and the windows of a span before the
newest one (or the span's buckets of them, summed by the database), of that attribution only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tastemaker.store import attribution
from tastemaker.store.attribution import Window
from tests.conftest import STORES, store_engine

ARN = "arn:aws:personalize:us-east-1:000000000000:metric-attribution/reads"
OTHER = ARN + "-other"


@pytest.fixture(params=STORES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    yield from store_engine(request, tmp_path, clear=("attribution_windows", "attribution_cursors"))


def test_totals_and_recent_windows_of_one_attribution(engine: sa.Engine) -> None:
    day = 86_400
    with engine.begin() as conn:
        for arn in (ARN, OTHER):
            attribution.start_at(conn, arn, 0)
        assert attribution.advance(conn, ARN, 0, 5, [
            Window("CLICKS", "news", 0, "click", 2.0, 2), Window("CLICKS", "news", day, "click", 3.0, 3),
            Window("CLICKS", "home", day + 900, "click", 1.0, 1), Window("SPEND", "news", day, "buy", 9.5, 2)])
        assert attribution.advance(conn, OTHER, 0, 5, [Window("CLICKS", "news", 5 * day, "click", 7.0, 7)])
    with engine.connect() as conn:
        assert attribution.totals_of(conn, ARN) == [("CLICKS", "click", "home", 1.0, 1),
                                                    ("CLICKS", "click", "news", 5.0, 5),
                                                    ("SPEND", "buy", "news", 9.5, 2)]
        recent = attribution.recent_windows(conn, ARN, day)  # newest starts at day + 900: window 0 is too old
        assert [(w.metric_name, w.source, w.window_start) for w in recent] == [
            ("CLICKS", "news", day), ("SPEND", "news", day), ("CLICKS", "home", day + 900)]
        assert attribution.recent_windows(conn, ARN + "-none", day) == []
        # Two days up to the newest window's end (day + 1800) in 12-hour buckets, summed by the database: the
        # buckets start at day + 1800 - 2 days + k * 12 h; day and day + 900 fall in the same one.
        start = day + 1800 - 2 * day
        summed = attribution.recent_windows(conn, ARN, 2 * day, 43_200)
        assert [(w.metric_name, w.source, w.window_start, w.event_type, w.value_sum, w.sample_count)
                for w in summed] == [
            ("CLICKS", "news", start + 43_200, "click", 2.0, 2),
            ("CLICKS", "home", start + 3 * 43_200, "click", 1.0, 1),
            ("CLICKS", "news", start + 3 * 43_200, "click", 3.0, 3),
            ("SPEND", "news", start + 3 * 43_200, "buy", 9.5, 2)]
        hourly = attribution.recent_windows(conn, ARN, day, 3600)  # window 0 is still out of the span
        assert [(w.source, w.window_start, w.value_sum) for w in hourly] == [
            ("home", day + 1800 - 3600, 1.0), ("news", day + 1800 - 3600, 3.0), ("news", day + 1800 - 3600, 9.5)]
        with pytest.raises(ValueError, match="multiple of 900"):
            attribution.recent_windows(conn, ARN, day, 1000)
        assert attribution.totals_of(conn, ARN + "-none") == []
