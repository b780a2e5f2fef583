"""Metric attribution storage on SQLite and PostgreSQL (mandatory under CI=true): windows add up, the read
position moves by compare-and-set so a batch is never counted twice, forgetting drops what it should."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tastemaker.store import attribution
from tastemaker.store.attribution import Window
from tastemaker.store.tables import events
from tests.conftest import STORES, store_engine

ARN = "arn:aws:personalize:us-east-1:000000000000:metric-attribution/m"


@pytest.fixture(params=STORES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    yield from store_engine(request, tmp_path, clear=("attribution_windows", "attribution_cursors", "events"))


def add_events(conn: sa.Connection, group: str, n: int) -> None:
    conn.execute(events.insert(), [
        {"dataset_group_arn": group, "event_id": uuid.uuid4().hex, "session_id": "s", "user_id": "u",
         "item_id": f"i{k}", "event_type": "click", "event_value": None, "sent_at": 1000.0 + k,
         "record": {"RECOMMENDATION_ID": f"RID-{k}"}, "received_at": 1000.0 + k} for k in range(n)])


def test_position_windows_and_compare_and_set(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_events(conn, "g", 3)
        attribution.start_at(conn, ARN, attribution.latest_event_id(conn, "g"))  # older events never count
        add_events(conn, "g", 2)
    with engine.begin() as conn:
        start = attribution.cursor(conn, ARN)
        batch = attribution.events_after(conn, "g", start)
        assert len(batch) == 2 and batch[0].record["RECOMMENDATION_ID"] == "RID-0"
        window = Window("CLICKS", "campaign-a", 900, "click", 2.0, 2)
        assert attribution.advance(conn, ARN, start, batch[-1].id, [window])
    with engine.begin() as conn:  # a second aggregator that read the old position writes nothing
        assert not attribution.advance(conn, ARN, start, batch[-1].id, [window])
        assert attribution.advance(conn, ARN, batch[-1].id, batch[-1].id + 1, [window])
    with engine.connect() as conn:
        [stored] = attribution.windows(conn, ARN)
        assert (stored.value_sum, stored.sample_count, stored.source) == (4.0, 4, "campaign-a")
    with engine.begin() as conn:
        attribution.forget(conn, ARN, ["OTHER"])
        assert len(attribution.windows(conn, ARN)) == 1
        attribution.forget(conn, ARN)
        assert attribution.windows(conn, ARN) == [] and attribution.cursor(conn, ARN) == 0
