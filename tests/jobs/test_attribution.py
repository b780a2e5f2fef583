"""The attribution aggregator's rules: which events count, for which source and metric."""

from __future__ import annotations

import uuid
from pathlib import Path

from tastemaker.cli.wiring import build_services
from tastemaker.config import Settings
from tastemaker.control.recommendation_ids import tag
from tastemaker.jobs.attribution import aggregate_all
from tastemaker.serving.engine import rid
from tastemaker.store import attribution, resources
from tastemaker.store.tables import events

GROUP = "arn:aws:personalize:us-east-1:000000000000:dataset-group/g"
CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/c"
ARN = "arn:aws:personalize:us-east-1:000000000000:metric-attribution/m"
DAY = 86_400.0


def event(record: dict, sent: float, received: float, kind: str = "click") -> dict:
    return {"dataset_group_arn": GROUP, "event_id": uuid.uuid4().hex, "session_id": "s", "user_id": "u",
            "item_id": "i1", "event_type": kind, "event_value": None, "sent_at": sent, "record": record,
            "received_at": received}


def test_sources_metric_start_times_and_old_events(tmp_path: Path) -> None:
    services = build_services(Settings(data_dir=tmp_path))
    ours = tag(rid(), CAMPAIGN)
    with services.engine.begin() as conn:
        resources.insert(conn, arn=CAMPAIGN, kind="campaign", body={"name": "c"}, status="ACTIVE",
                         dataset_group_arn=GROUP)
        resources.insert(conn, arn=ARN, kind="metric_attribution", status="ACTIVE", dataset_group_arn=GROUP, body={
            "name": "m", "metrics": [
                {"event_type": "click", "metric_name": "CLICKS", "expression": "SAMPLECOUNT()", "added_at": 0},
                {"event_type": "click", "metric_name": "LATE", "expression": "SAMPLECOUNT()", "added_at": 1500},
                {"event_type": "buy", "metric_name": "VALUE", "expression": "SUM(Interactions.EVENT_VALUE)",
                 "added_at": 0}]})
        attribution.start_at(conn, ARN, 0)
        conn.execute(events.insert(), [
            event({"RECOMMENDATION_ID": ours}, 1000, 1000),  # CLICKS only: LATE did not exist yet
            event({"RECOMMENDATION_ID": ours}, 2000, 2000),  # CLICKS and LATE
            event({"EVENT_ATTRIBUTION_SOURCE": "email"}, 2100, 2100),  # CLICKS and LATE, source "email"
            event({"RECOMMENDATION_ID": ours}, 2000, 2000 + 15 * DAY),  # sent 15 days before it was recorded
            event({"RECOMMENDATION_ID": "RID-not-one-of-ours"}, 2000, 2000),  # foreign id: no source
            event({}, 2000, 2000),  # no source at all
            event({"RECOMMENDATION_ID": ours, "EVENT_VALUE": 12.5}, 2000, 2000, kind="buy"),
            event({"RECOMMENDATION_ID": ours}, 2000, 2000, kind="buy"),  # no value: adds nothing
        ])
    assert aggregate_all(services) == 8
    assert aggregate_all(services) == 0  # nothing new, nothing counted twice
    with services.engine.connect() as conn:
        got = {(w.metric_name, w.source, w.window_start): (w.value_sum, w.sample_count)
               for w in attribution.windows(conn, ARN)}
    assert got == {
        ("CLICKS", CAMPAIGN, 900): (1.0, 1), ("CLICKS", CAMPAIGN, 1800): (1.0, 1), ("LATE", CAMPAIGN, 1800): (1.0, 1),
        ("CLICKS", "email", 1800): (1.0, 1), ("LATE", "email", 1800): (1.0, 1), ("VALUE", CAMPAIGN, 1800): (12.5, 1),
    }
