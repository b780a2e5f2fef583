"""The monitoring tables (audit trail, webhook outbox, state-change outbox, stream checkpoints) on SQLite and PostgreSQL (mandatory
under CI=true): the migration creates what the queries use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tastemaker.store import audit, checkpoints, resources, state_changes, webhooks
from tests.conftest import STORES, store_engine


@pytest.fixture(params=STORES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    yield from store_engine(request, tmp_path, clear=("audit_events", "outbox", "webhooks", "stream_checkpoints", "state_changes"))


def test_audit_pages_newest_first_with_filters_and_purges(engine: sa.Engine) -> None:
    arn = "arn:aws:personalize:us-east-1:000000000000:campaign/c"
    with engine.begin() as conn:
        for k in range(5):
            audit.append(conn, event_id=f"id-{k}", event_time=100.0 + k, event_name="CreateCampaign" if k % 2 else
                         "ListCampaigns", event_source="personalize.amazonaws.com", read_only=k % 2 == 0,
                         access_key_id="AK", username="root", resources=[("AWS::Personalize::Campaign", arn)] if k % 2
                         else [], error_code="ResourceNotFoundException" if k == 3 else None, record={"k": k})
    with engine.connect() as conn:
        assert [e.event_id for e in audit.page(conn, start=None, end=None, before_seq=None, limit=10)] == [
            "id-4", "id-3", "id-2", "id-1", "id-0"]
        first = audit.page(conn, start=101, end=103.5, before_seq=None, limit=2)
        assert [e.event_id for e in first] == ["id-3", "id-2"]
        rest = audit.page(conn, start=101, end=103.5, before_seq=first[-1].seq, limit=2)
        assert [e.event_id for e in rest] == ["id-1"]
        assert [e.event_id for e in audit.page(conn, start=None, end=None, before_seq=None, limit=10,
                                               resource_name=arn)] == ["id-3", "id-1"]
        assert [e.event_id for e in audit.page(conn, start=None, end=None, before_seq=None, limit=10,
                                               read_only=True, failed=False)] == ["id-4", "id-2", "id-0"]
        assert [e.record for e in audit.page(conn, start=None, end=None, before_seq=None, limit=10,
                                             failed=True)] == [{"k": 3}]
    with engine.begin() as conn:
        assert audit.purge(conn, 102.0) == 2
    with engine.connect() as conn:
        assert len(audit.page(conn, start=None, end=None, before_seq=None, limit=10)) == 3


def test_outbox_claims_with_a_lease_retries_and_gives_up(engine: sa.Engine) -> None:
    group = "arn:aws:personalize:us-east-1:000000000000:dataset-group/g"
    with engine.begin() as conn:
        webhooks.add(conn, webhooks.Webhook("wh-all", "http://a", None, "s", 1.0))
        webhooks.add(conn, webhooks.Webhook("wh-g", "http://g", group, "s", 2.0))
        webhooks.add(conn, webhooks.Webhook("wh-other", "http://o", group + "2", "s", 3.0))
        hooks = webhooks.subscribers(conn, group)
        assert sorted(h.id for h in hooks) == ["wh-all", "wh-g"]
        webhooks.enqueue(conn, "ev-1", [h.id for h in hooks], {"id": "ev-1"}, now=10.0)
    with engine.begin() as conn:
        claimed = webhooks.due(conn, now=10.0, lease_seconds=60)
    assert sorted(d.webhook.id for d in claimed) == ["wh-all", "wh-g"] and claimed[0].event == {"id": "ev-1"}
    with engine.begin() as conn:
        assert webhooks.due(conn, now=20.0, lease_seconds=60) == []  # leased
        webhooks.delivered(conn, claimed[0].seq, now=20.0)
        webhooks.failed(conn, claimed[1].seq, "HTTP 500", next_attempt_at=30.0)
    with engine.begin() as conn:
        assert webhooks.due(conn, now=29.0, lease_seconds=60) == []
        (again,) = webhooks.due(conn, now=30.0, lease_seconds=60)
        assert again.attempts == 1
        webhooks.failed(conn, again.seq, "HTTP 500", next_attempt_at=None)
    with engine.begin() as conn:
        assert webhooks.due(conn, now=1e9, lease_seconds=60) == []
        (stuck,) = webhooks.pending(conn)
        assert stuck["given_up"] and stuck["attempts"] == 2 and stuck["last_error"] == "HTTP 500"
        assert webhooks.remove(conn, "wh-g") and webhooks.pending(conn) == []


def test_checkpoints_are_saved_and_moved(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        checkpoints.save(conn, "kinesis:s", "shard-0", "10")
        checkpoints.save(conn, "kinesis:s", "shard-1", "7")
        checkpoints.save(conn, "kinesis:s", "shard-0", "12")
        checkpoints.save(conn, "redis:k", "k", "1-0")
    with engine.connect() as conn:
        assert checkpoints.load(conn, "kinesis:s") == {"shard-0": "12", "shard-1": "7"}
        assert checkpoints.load(conn, "redis:k") == {"k": "1-0"}


def test_every_status_change_is_recorded_with_the_change_and_taken_once(engine: sa.Engine) -> None:
    group = "arn:aws:personalize:us-east-1:000000000000:dataset-group/sc-g"
    version = "arn:aws:personalize:us-east-1:000000000000:solution/sc-s/1"
    campaign = "arn:aws:personalize:us-east-1:000000000000:campaign/sc-c"
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM resources WHERE arn IN (:a, :b, :c)"), {"a": group, "b": version,
                                                                                   "c": campaign})
        resources.insert(conn, arn=group, kind="dataset_group", body={}, status="ACTIVE")  # ACTIVE inside create
        resources.insert(conn, arn=version, kind="solution_version", body={}, status="CREATE PENDING",
                         dataset_group_arn=group)
        resources.update(conn, version, status="CREATE IN_PROGRESS")
        resources.update(conn, version, changes={"training_progress": 0.5})  # no status change: no record
        resources.update(conn, version, status="ACTIVE", changes={"metrics": {"precision_at_25": 0.25}})
        resources.insert(conn, arn=campaign, kind="campaign", body={}, status="ACTIVE", dataset_group_arn=group)
        resources.update(conn, campaign, changes={"latest_campaign_update": {"status": "CREATE PENDING"}})
    with engine.begin() as conn:  # a rolled-back change records nothing
        resources.delete(conn, campaign)
        conn.rollback()
    with engine.begin() as conn:
        resources.delete(conn, group)
    with engine.begin() as conn:
        changes = state_changes.take(conn)
        assert state_changes.take(conn) == []  # taken once
    seen = [(c.arn, c.previous_status, c.status) for c in changes]
    assert seen == [(group, None, "ACTIVE"), (version, None, "CREATE PENDING"),
                    (version, "CREATE PENDING", "CREATE IN_PROGRESS"), (version, "CREATE IN_PROGRESS", "ACTIVE"),
                    (campaign, None, "ACTIVE"), (campaign, "ACTIVE", "ACTIVE"), (group, "ACTIVE", "DELETED")]
    assert changes[3].detail == {"metrics": {"precision_at_25": 0.25}} and changes[3].dataset_group_arn == group
    assert changes[5].detail == {"latestCampaignUpdate": {"status": "CREATE PENDING", "failureReason": None}}
    assert len({c.event_id for c in changes}) == len(changes)
    with engine.begin() as conn:
        assert state_changes.waiting(conn) == 0
        conn.execute(sa.text("DELETE FROM resources WHERE arn IN (:b, :c)"), {"b": version, "c": campaign})
