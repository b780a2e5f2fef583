"""The status transition table, and its enforcement by store.resources.update."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
import sqlalchemy as sa

from tastemaker.jobs.worker import TaskSpec, mark_failed
from tastemaker.store import db, queue, resources
from tastemaker.store.status import TRANSITIONS, IllegalTransition, Status, allowed

S = Status


def walk(kind: str, *path: Status) -> None:
    for current, target in itertools.pairwise(path):
        assert allowed(kind, current, target), f"{kind}: {current} -> {target} should be allowed"


def test_values_are_the_wire_strings() -> None:
    assert S.CREATE_IN_PROGRESS == "CREATE IN_PROGRESS"
    assert json.dumps({"status": S.DELETE_PENDING}) == '{"status": "DELETE PENDING"}'
    assert orjson.dumps({"status": S.START_IN_PROGRESS}) == b'{"status":"START IN_PROGRESS"}'


def test_documented_lifecycles_are_allowed() -> None:
    for kind in ("dataset", "solution", "campaign", "event_tracker", "filter"):
        walk(kind, S.CREATE_PENDING, S.CREATE_IN_PROGRESS, S.ACTIVE, S.DELETE_PENDING, S.DELETE_IN_PROGRESS)
        walk(kind, S.CREATE_PENDING, S.CREATE_IN_PROGRESS, S.CREATE_FAILED, S.DELETE_PENDING)
    walk("dataset_group", S.CREATE_PENDING, S.CREATE_IN_PROGRESS, S.ACTIVE, S.DELETE_PENDING)
    walk("dataset_import_job", S.CREATE_PENDING, S.CREATE_IN_PROGRESS, S.ACTIVE)
    walk("solution_version", S.CREATE_PENDING, S.CREATE_STOPPED)
    walk("solution_version", S.CREATE_PENDING, S.CREATE_IN_PROGRESS, S.CREATE_STOPPING, S.CREATE_STOPPED)
    walk("recommender", S.CREATE_PENDING, S.CREATE_IN_PROGRESS, S.ACTIVE, S.STOP_PENDING, S.STOP_IN_PROGRESS,
         S.INACTIVE, S.START_PENDING, S.START_IN_PROGRESS, S.ACTIVE, S.DELETE_PENDING, S.DELETE_IN_PROGRESS)
    walk("data_deletion_job", S.PENDING, S.IN_PROGRESS, S.COMPLETED)


@pytest.mark.parametrize(("kind", "current", "target"), [
    ("dataset_group", S.ACTIVE, S.CREATE_PENDING),
    ("dataset_group", S.DELETE_PENDING, S.DELETE_IN_PROGRESS),  # groups show DELETE PENDING, then are gone
    ("dataset", S.CREATE_PENDING, S.ACTIVE),  # skips CREATE IN_PROGRESS
    ("dataset", S.ACTIVE, S.CREATE_FAILED),
    ("campaign", S.DELETE_PENDING, S.ACTIVE),
    ("solution_version", S.CREATE_STOPPED, S.CREATE_IN_PROGRESS),  # a stopped version cannot resume
    ("solution_version", S.ACTIVE, S.CREATE_STOPPING),
    ("solution_version", S.ACTIVE, S.DELETE_PENDING),  # versions go with their solution
    ("dataset_import_job", S.ACTIVE, S.DELETE_PENDING),
    ("recommender", S.ACTIVE, S.START_PENDING),
    ("recommender", S.INACTIVE, S.ACTIVE),
    ("dataset", S.ACTIVE, S.INACTIVE),  # only recommenders stop
    ("schema", None, S.ACTIVE),  # schemas have no status
])
def test_table_refuses(kind: str, current: Status | None, target: Status) -> None:
    assert not allowed(kind, current, target)


def test_every_kind_reaches_a_terminal_status_from_its_start() -> None:
    for kind, table in TRANSITIONS.items():
        start = S.PENDING if kind == "data_deletion_job" else S.CREATE_PENDING
        seen, todo = {start}, [start]
        while todo:
            for nxt in table.get(todo.pop(), frozenset()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert S.ACTIVE in seen or S.COMPLETED in seen, kind


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    eng = db.create_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    db.upgrade(eng)
    yield eng
    eng.dispose()


def add(conn: sa.Connection, kind: str, status: Status, **body: object) -> str:
    arn = f"arn:aws:personalize:us-east-1:000000000000:{kind}/x"
    resources.insert(conn, arn=arn, kind=kind, body={"name": "x", **body}, status=status)
    return arn


def test_update_refuses_a_move_the_table_does_not_allow(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        arn = add(conn, "dataset_group", S.ACTIVE)
    with engine.begin() as conn, pytest.raises(IllegalTransition, match="ACTIVE to CREATE PENDING"):
        resources.update(conn, arn, status=S.CREATE_PENDING)
    with engine.begin() as conn:
        assert resources.get(conn, arn).status == S.ACTIVE
        updated = resources.update(conn, arn, status=S.DELETE_PENDING)
        assert updated.status == S.DELETE_PENDING and updated.body["status"] == "DELETE PENDING"
        resources.update(conn, arn, status=S.DELETE_PENDING)  # rewriting the same status is no move


def test_update_checks_latest_update_records(engine: sa.Engine) -> None:
    record = {"status": S.CREATE_PENDING, "creation_date_time": 1.0}
    with engine.begin() as conn:
        arn = add(conn, "campaign", S.ACTIVE)
        resources.update(conn, arn, changes={"latest_campaign_update": record})
        resources.update(conn, arn, changes={"latest_campaign_update": {**record, "status": S.CREATE_IN_PROGRESS}})
    with engine.begin() as conn, pytest.raises(IllegalTransition, match="latest_campaign_update"):
        # a new update while the last one still runs
        resources.update(conn, arn, changes={"latest_campaign_update": {**record, "creation_date_time": 2.0}})
    with engine.begin() as conn, pytest.raises(IllegalTransition, match="CREATE IN_PROGRESS to CREATE PENDING"):
        resources.update(conn, arn, changes={"latest_campaign_update": record})


def test_a_crashed_campaign_update_fails_the_update_not_the_campaign(engine: sa.Engine) -> None:
    """An unexpected crash of UpdateCampaign's job leaves the campaign ACTIVE on its old version."""
    with engine.begin() as conn:
        arn = add(conn, "campaign", S.ACTIVE,
                  latest_campaign_update={"status": S.CREATE_IN_PROGRESS, "creation_date_time": 1.0})
        queue.enqueue(conn, queue.JobKind.CAMPAIGN_UPDATE, arn)
    job = queue.claim(engine, "w:1:x")  # failures are written under the claim's lease
    assert job is not None
    tasks = {queue.JobKind.CAMPAIGN_UPDATE: TaskSpec(lambda *a: None, update_record="latest_campaign_update")}
    mark_failed(SimpleNamespace(engine=engine), tasks, job, "Internal error: boom")  # type: ignore[arg-type]
    with engine.begin() as conn:
        campaign = resources.get(conn, arn)
    assert campaign.status == S.ACTIVE
    assert campaign.body["latest_campaign_update"]["status"] == "CREATE FAILED"
    assert campaign.body["latest_campaign_update"]["failure_reason"] == "Internal error: boom"
