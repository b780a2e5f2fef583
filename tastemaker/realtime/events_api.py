"""The events API: PutEvents, PutItems, PutUsers, PutActions, PutActionInteractions."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tastemaker.control.common import ACTIVE, arn_region
from tastemaker.control.context import RequestContext
from tastemaker.control.registry import operation
from tastemaker.errors import InvalidInputException, ResourceInUseException, ResourceNotFoundException
from tastemaker.realtime.inline import is_inline, slow_step
from tastemaker.realtime.records import (
    ACTION_INTERACTION_MEMBER_FIELDS,
    RecordMapper,
    event_mapper,
    map_action_interaction,
    map_entity,
    map_event,
)
from tastemaker.realtime.state import EmbeddedState, RecentEvent, get_state
from tastemaker.services import Services
from tastemaker.store import dataset_parts, keys, resources
from tastemaker.store.records import Dataset

log = logging.getLogger("tastemaker.realtime")
TARGET_TTL_SECONDS = 2.0  # how long a process trusts its trackingId -> dataset lookup


@dataclass(frozen=True)
class Target:
    """Where a trackingId's events go: the partition key in `events` and the schema they must fit."""

    partition: str  # dataset group ARN (PutEvents) or Action_Interactions dataset ARN (PutActionInteractions)
    dataset_group_arn: str
    mapper: RecordMapper | None
    problem: str | None  # why events cannot be accepted now (no Interactions dataset, tracker not ACTIVE)


class TargetCache:
    """trackingId -> Target per process, refreshed after TARGET_TTL_SECONDS (deletes and schema updates land
    within that time); an unknown or not-ready trackingId reloads at once (a tracker is usable as soon as it
    is ACTIVE; the lookup reads only the few tracker and dataset rows)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded_at = 0.0
        self.targets: dict[tuple[str, str], Target] = {}

    def get(self, services: Services, kind: str, tracking_id: str) -> Target | None:
        key = (kind, tracking_id)
        target = self.targets.get(key)
        if target is None or target.problem or time.monotonic() - self.loaded_at > TARGET_TTL_SECONDS:
            slow_step("event tracker lookup")  # a database read: not on the event loop
        if time.monotonic() - self.loaded_at > TARGET_TTL_SECONDS:
            # the periodic refresh: one thread reloads, the others keep using the current lookup meanwhile
            self._reload(services, TARGET_TTL_SECONDS, wait=False)
        target = self.targets.get(key)
        if target is None or target.problem:
            self._reload(services, 0.0, wait=True)
            target = self.targets.get(key)
        return target

    def reload(self, services: Services) -> None:
        """Read the trackers now (serving's change watch calls it when an event tracker changed)."""
        self._reload(services, 0.0, wait=True)

    def _reload(self, services: Services, max_age: float, *, wait: bool) -> None:
        if not self.lock.acquire(blocking=wait):
            return
        try:
            if time.monotonic() - self.loaded_at > max_age:
                self.targets = _load_targets(services)
                self.loaded_at = time.monotonic()
        finally:
            self.lock.release()


def _load_targets(services: Services) -> dict[tuple[str, str], Target]:
    from tastemaker.control.datasets import dataset_of_type
    from tastemaker.control.event_trackers import trackers_by_tracking_id
    from tastemaker.control.schemas import load_schema

    out: dict[tuple[str, str], Target] = {}
    with services.read_engine.connect() as conn:
        for tracking_id, tracker in trackers_by_tracking_id(conn).items():
            group = tracker.dataset_group_arn or ""
            problem = None if tracker.status == ACTIVE else (
                f"The event tracker {tracker.arn} for trackingId {tracking_id} is {tracker.status}, not ACTIVE.")
            dataset = dataset_of_type(conn, group, "Interactions")
            mapper = None
            if dataset is None:
                problem = problem or (f"Dataset group {group} has no Interactions dataset; create one before "
                                      "sending events.")
            else:
                mapper = event_mapper(load_schema(conn, Dataset.of(dataset).schema_arn)[1])
            out[("events", tracking_id)] = Target(group, group, mapper, problem)
            actions = dataset_of_type(conn, group, "Action_Interactions")
            if actions is not None:
                _add_action_target(conn, out, actions, tracking_id, problem)
        for dataset in resources.children(conn, kind="dataset"):
            view = Dataset.of(dataset)
            if view.dataset_type == "ACTION_INTERACTIONS" and view.tracking_id:
                _add_action_target(conn, out, dataset, view.tracking_id, None)
    return out


def _add_action_target(conn: sa.Connection, out: dict[tuple[str, str], Target], dataset: resources.Resource,
                       tracking_id: str, problem: str | None) -> None:
    from tastemaker.control.schemas import load_schema

    if problem is None and dataset.status != ACTIVE:
        problem = f"The Action_Interactions dataset {dataset.arn} is {dataset.status}, not ACTIVE."
    mapper = RecordMapper(load_schema(conn, Dataset.of(dataset).schema_arn)[1], ACTION_INTERACTION_MEMBER_FIELDS)
    out[("actions", tracking_id)] = Target(dataset.arn, dataset.dataset_group_arn or "", mapper, problem)


def _target(services: Services, kind: str, tracking_id: str, region: str | None = None) -> Target:
    target = services.realtime.targets.get(services, kind, tracking_id)
    if target is not None and region is not None and arn_region(target.dataset_group_arn) not in (None, region):
        target = None  # a tracker of another region does not exist for this caller (regions are isolated)
    if target is None:
        what = "event tracker" if kind == "events" else "event tracker or Action_Interactions dataset"
        raise InvalidInputException(f"trackingId {tracking_id} does not belong to any {what}; use the trackingId "
                                    "returned by CreateEventTracker.")
    if target.problem:
        raise InvalidInputException(target.problem)
    return target


def _insert_events(services: Services, rows: list[dict[str, Any]], want_inserted: bool) -> set[str] | None:
    """Store one request's rows atomically and durably; returns the eventIds actually inserted if asked.

    Goes through the process's group-commit writer: concurrent requests share one transaction (one commit,
    one write lock) instead of queueing on the database lock one by one.
    """
    return services.realtime.writer().write(rows, want_inserted)


@operation("PutEvents", inline=True)
def put_events(ctx: RequestContext, *, tracking_id: str, session_id: str, event_list: list[dict[str, Any]],
               user_id: str | None = None) -> dict[str, Any] | Awaitable[dict[str, Any]]:
    """Validate and map the events, then store them through the group-commit writer. On the event loop (a warm
    trackingId and the embedded real-time state) it returns an awaitable that answers once the rows are
    committed, holding no thread meanwhile; in a thread it returns after the commit."""
    state = get_state(ctx.services)
    feed = not isinstance(state, EmbeddedState)
    if feed:
        slow_step("real-time state feed")  # a network write after the commit: in the thread pool
    target = _target(ctx.services, "events", tracking_id, ctx.region)
    assert target.mapper is not None
    received = time.time()
    rows = []
    for index, event in enumerate(event_list):
        record = map_event(target.mapper, index, event, user_id)
        rows.append({
            "dataset_group_arn": target.partition, "event_id": event.get("event_id") or str(uuid.uuid4()),
            "session_id": session_id, "user_id": user_id, "item_id": record.get("ITEM_ID"),
            "event_type": event["event_type"], "event_value": record.get("EVENT_VALUE", event.get("event_value")),
            "sent_at": float(event["sent_at"]), "record": record, "received_at": received,
        })
    writer = ctx.services.realtime.writer()
    if is_inline():  # on the event loop (never with a feed: that is a slow step): await the commit there
        return _answer_when_committed(writer.submit_async(rows, want_inserted=False))
    inserted = writer.write(rows, want_inserted=feed)
    if feed and inserted:
        fresh = [RecentEvent(r["item_id"], r["event_type"], r["sent_at"], r["event_value"],
                             event_id=r["event_id"], received_at=received)
                 for r in rows if r["event_id"] in inserted]
        try:
            state.record_events(target.dataset_group_arn, user_id, session_id, fresh)
        except Exception as exc:  # noqa: BLE001 - the events are stored; the shared cache only lags
            log.warning("could not record %d events in the real-time state: %s", len(fresh), exc)
    return {}


async def _answer_when_committed(committed: asyncio.Future[set[str] | None]) -> dict[str, Any]:
    await committed
    return {}


@operation("PutActionInteractions")
def put_action_interactions(ctx: RequestContext, *, tracking_id: str,
                            action_interactions: list[dict[str, Any]]) -> dict[str, Any]:
    """Stored like events, partitioned by the Action_Interactions dataset ARN (so Interactions training never
    sees them); the Actions recipes read them from there."""
    target = _target(ctx.services, "actions", tracking_id, ctx.region)
    assert target.mapper is not None
    received = time.time()
    rows = []
    for index, item in enumerate(action_interactions):
        record = map_action_interaction(target.mapper, index, item)
        rows.append({
            "dataset_group_arn": target.partition, "event_id": item.get("event_id") or str(uuid.uuid4()),
            "session_id": item["session_id"], "user_id": item.get("user_id"), "item_id": item["action_id"],
            "event_type": item["event_type"], "event_value": None, "sent_at": float(item["timestamp"]),
            "record": record, "received_at": received,
        })
    _insert_events(ctx.services, rows, want_inserted=False)
    return {}


# --- Put{Items,Users,Actions}: one validated Parquet part per call --------------------------------------

_RECORD_REF = re.compile(r"record\[(\d+)\]")


def _put_entities(ctx: RequestContext, dataset_arn: str, dataset_type: str, member: str, id_member: str,
                  entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    from tastemaker.control.schemas import load_schema
    from tastemaker.data.schemas import id_field
    from tastemaker.data.tables import write_records

    services = ctx.services
    with ctx.engine.connect() as conn:
        dataset = _active_dataset(conn, dataset_arn, dataset_type)
        _schema_res, schema = load_schema(conn, Dataset.of(dataset).schema_arn)
    key_field = id_field(dataset_type) or ""
    mapper = RecordMapper(schema, {key_field: id_member})
    label = member[:-1]
    records = [map_entity(mapper, f"{member}.{i + 1} ({label} {i + 1})", key_field, entry[_snake(id_member)],
                          entry.get("properties")) for i, entry in enumerate(entries)]
    batch_id = uuid.uuid4().hex
    workdir = Path(tempfile.mkdtemp(prefix="tm-put-", dir=_tmp_root(services)))
    try:
        path = workdir / "part-00000.parquet"
        try:
            rows = write_records(records, schema, dataset_type, path)
        except InvalidInputException as exc:
            message = _RECORD_REF.sub(lambda m: f"{member}.{int(m.group(1)) + 1} ({label} {int(m.group(1)) + 1})",
                                      exc.message)
            raise InvalidInputException(message) from None
        key = keys.dataset_batch_prefix(Dataset.of(dataset).storage_id, "put", batch_id) + path.name
        services.blobs.put_file(key, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    try:
        with ctx.engine.begin() as conn:
            _active_dataset(conn, dataset_arn, dataset_type, lock=True)
            dataset_parts.add_parts(conn, dataset_arn, "PUT", [(key, rows)])
            resources.update(conn, dataset_arn, changes={"data_version": uuid.uuid4().hex[:12]})
    except BaseException:
        services.blobs.delete(key)
        raise
    return {}


def _active_dataset(conn: sa.Connection, dataset_arn: str, dataset_type: str, lock: bool = False) -> resources.Resource:
    dataset = resources.find(conn, dataset_arn, "dataset")
    if dataset is None:
        raise ResourceNotFoundException(f"Could not find dataset {dataset_arn}.")
    if Dataset.of(dataset).dataset_type != dataset_type.upper():
        raise InvalidInputException(f"{dataset_arn} is a {Dataset.of(dataset).dataset_type} dataset; this operation "
                                    f"writes to a {dataset_type} dataset.")
    if dataset.status != ACTIVE:
        raise ResourceInUseException(f"Dataset {dataset_arn} is {dataset.status}; records can be added only "
                                     "when it is ACTIVE.")
    if lock:
        resources.get(conn, dataset_arn, "dataset", lock=True)
    return dataset


def _snake(member: str) -> str:
    return {"itemId": "item_id", "userId": "user_id", "actionId": "action_id"}[member]


def _tmp_root(services: Services) -> str:
    root = services.settings.data_dir / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return str(root)


@operation("PutItems")
def put_items(ctx: RequestContext, *, dataset_arn: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return _put_entities(ctx, dataset_arn, "Items", "items", "itemId", items)


@operation("PutUsers")
def put_users(ctx: RequestContext, *, dataset_arn: str, users: list[dict[str, Any]]) -> dict[str, Any]:
    return _put_entities(ctx, dataset_arn, "Users", "users", "userId", users)


@operation("PutActions")
def put_actions(ctx: RequestContext, *, dataset_arn: str, actions: list[dict[str, Any]]) -> dict[str, Any]:
    return _put_entities(ctx, dataset_arn, "Actions", "actions", "actionId", actions)
