"""Trending-Now picks up streamed events at its next interval boundary, without retraining."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from tastemaker.cli.wiring import make_services
from tastemaker.config import Settings
from tastemaker.recipes import get_recipe
from tastemaker.recipes.training_data import TrainingConfig, TrainingData
from tastemaker.services import Services
from tastemaker.serving.trending import interval_boundary, trending_now
from tastemaker.store import db
from tastemaker.store.blobs import LocalBlobStore
from tastemaker.store.tables import events

GROUP = "arn:aws:personalize:us-east-1:000000000000:dataset-group/trend"
HOUR = 3600


def services(tmp_path: Path) -> Services:
    engine = db.create_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    db.upgrade(engine)
    return make_services(Settings(data_dir=tmp_path), engine, LocalBlobStore(tmp_path / "blobs"))


def trained_model(start: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    n = 3000
    table = pa.table({
        "USER_ID": [f"u{u}" for u in rng.integers(0, 200, n)],
        "ITEM_ID": [f"i{i}" for i in rng.integers(0, 50, n)],
        "TIMESTAMP": (start + rng.integers(0, 2 * HOUR, n)).astype(np.int64),
    })
    data = TrainingData.from_tables(table, None, None, TrainingConfig())
    return get_recipe("aws-trending-now").fit(data, {"trend_discovery_frequency": "1 hour"})


def stream(svc: Services, item: str, sent_at: float, count: int) -> None:
    with svc.engine.begin() as conn:
        for k in range(count):
            conn.execute(sa.insert(events).values(
                dataset_group_arn=GROUP, event_id=f"{item}-{sent_at}-{k}", session_id="s", user_id="u1",
                item_id=item, event_type="click", event_value=None, sent_at=sent_at, record={},
                received_at=time.time()))


def test_streamed_events_count_from_the_next_interval(tmp_path: Path) -> None:
    svc = services(tmp_path)
    now = float(interval_boundary(time.time(), HOUR)) + 10.0
    model = trained_model(int(now) - 10 * HOUR)  # historic training data: the trend falls back to popularity
    before = trending_now(svc, model, "m", GROUP, now=now)
    assert before is not None
    target = "i7"
    position = int(model.item_index([target])[0])
    # Events streamed during the current interval count once it is over, not before.
    stream(svc, target, now + 5, 40)
    cached = trending_now(svc, model, "m", GROUP, now=now)
    assert cached is before  # same boundary: the cached trend, no query per request
    after = trending_now(svc, model, "m", GROUP, now=now + HOUR)
    assert after is not None and int(np.argmax(after)) == position
    assert int(np.argmax(before)) != position or before[position] < after[position]


def test_other_models_are_left_alone(tmp_path: Path) -> None:
    class Plain:
        pass

    assert trending_now(services(tmp_path), Plain(), "x", GROUP) is None
