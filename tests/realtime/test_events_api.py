"""PutEvents / PutItems / PutUsers in process, on SQLite and PostgreSQL: mapping, dedup, atomicity, training export."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from tastemaker.errors import InvalidInputException, ResourceInUseException, ResourceNotFoundException
from tastemaker.realtime.events_api import put_events, put_items, put_users
from tastemaker.realtime.state import get_state
from tastemaker.services import Services
from tastemaker.store.tables import events
from tests.realtime.conftest import INTERACTIONS, make_group


def stored(services: Services, group_arn: str) -> list[sa.Row]:
    with services.engine.connect() as conn:
        return list(conn.execute(sa.select(events).where(events.c.dataset_group_arn == group_arn)
                                 .order_by(events.c.id)))


def event(item: str, sent_at: float = 1_700_000_000.5, **extra: object) -> dict[str, object]:
    return {"event_type": "click", "item_id": item, "sent_at": sent_at, **extra}


def test_events_are_mapped_to_schema_fields(services: Services) -> None:
    g = make_group(services)
    put_events(g.ctx, tracking_id=g.tracking_id, session_id="s1", user_id="u1", event_list=[
        event("i1", event_value=2.5, properties=json.dumps({"device": "ios", "numberOfRatings": "12"}),
              impression=["i1", "i2", "i3"], recommendation_id="RID-1",
              metric_attribution={"event_attribution_source": "email"}, event_id="e-1"),
        event("i2", sent_at=1_700_000_100.0),
    ])
    rows = stored(services, g.arn)
    assert rows[0].event_id == "e-1" and rows[1].event_id  # generated when absent
    assert rows[0].record == {"USER_ID": "u1", "ITEM_ID": "i1", "TIMESTAMP": 1_700_000_000, "EVENT_TYPE": "click",
                              "EVENT_VALUE": 2.5, "DEVICE": "ios", "NUMBER_OF_RATINGS": 12,
                              "IMPRESSION": "i1|i2|i3", "RECOMMENDATION_ID": "RID-1",
                              "EVENT_ATTRIBUTION_SOURCE": "email"}
    assert (rows[0].session_id, rows[0].user_id, rows[0].item_id, rows[0].sent_at) == ("s1", "u1", "i1", 1_700_000_000.5)


def test_repeated_event_ids_are_ignored(services: Services) -> None:
    g = make_group(services)
    batch = [event("i1", event_id="dup"), event("i2", event_id="dup"), event("i3", event_id="other")]
    put_events(g.ctx, tracking_id=g.tracking_id, session_id="s1", user_id="u1", event_list=batch)
    put_events(g.ctx, tracking_id=g.tracking_id, session_id="s1", user_id="u1", event_list=[event("i4", event_id="dup")])
    assert [(r.event_id, r.item_id) for r in stored(services, g.arn)] == [("dup", "i1"), ("other", "i3")]


@pytest.mark.parametrize("bad, where, what", [
    (event("i9", properties="{not json"), "eventList.2", "not valid JSON"),
    (event("i9", properties=json.dumps({"colour": "red"})), "eventList.2", "'colour'"),
    (event("i9", properties=json.dumps({"numberOfRatings": "many"})), "eventList.2", "NUMBER_OF_RATINGS"),
    (event("i9", properties=json.dumps({"userId": "x"})), "eventList.2", "'userId' is not allowed"),
    ({"event_type": "click", "item_id": "i9"}, "eventList.2", "sentAt"),
    ({"event_type": "click", "sent_at": 1.0}, "eventList.2", "itemId"),
])
def test_a_bad_event_refuses_the_whole_batch(services: Services, bad: dict, where: str, what: str) -> None:
    g = make_group(services)
    with pytest.raises(InvalidInputException) as exc:
        put_events(g.ctx, tracking_id=g.tracking_id, session_id="s1", user_id="u1",
                   event_list=[event("i1"), bad, event("i3")])
    assert where in exc.value.message and what in exc.value.message, exc.value.message
    assert stored(services, g.arn) == []


def test_the_item_may_come_in_properties_and_the_member_wins(services: Services) -> None:
    """As AWS's notebooks send it (issue #14 item 1): the stored event carries the item either way."""
    g = make_group(services)
    put_events(g.ctx, tracking_id=g.tracking_id, session_id="s1", user_id="u1", event_list=[
        {"event_type": "click", "sent_at": 1.0, "properties": json.dumps({"itemId": "from-properties"})},
        event("member", properties=json.dumps({"itemId": "ignored"}))])
    assert [r.item_id for r in stored(services, g.arn)] == ["from-properties", "member"]


def test_unknown_tracking_id_and_group_without_interactions(services: Services) -> None:
    with pytest.raises(InvalidInputException, match="trackingId 00000000-0000"):
        g = make_group(services)
        put_events(g.ctx, tracking_id="00000000-0000-0000-0000-000000000000", session_id="s", event_list=[event("i")])
    bare = make_group(services, schemas={})
    with pytest.raises(InvalidInputException, match="no Interactions dataset"):
        put_events(bare.ctx, tracking_id=bare.tracking_id, session_id="s", event_list=[event("i")])


def test_anonymous_session_events_and_recent_state(services: Services) -> None:
    g = make_group(services)
    put_events(g.ctx, tracking_id=g.tracking_id, session_id="anon-1", event_list=[event("i1", 10.0), event("i2", 20.0)])
    put_events(g.ctx, tracking_id=g.tracking_id, session_id="anon-1", user_id="u7", event_list=[event("i3", 30.0)])
    state = get_state(services)
    assert [e.item_id for e in state.recent_events(g.arn, "anon-1")] == ["i3", "i2", "i1"]
    # the session is stitched to u7: its anonymous events count as u7's at once
    assert [e.item_id for e in state.recent_events(g.arn, "u7")] == ["i3", "i2", "i1"]
    assert stored(services, g.arn)[0].record["USER_ID"] is None


def test_streamed_events_export_as_training_data(services: Services, tmp_path: Path) -> None:
    from tastemaker.data.schemas import parse_schema
    from tastemaker.data.tables import read_dataset
    from tastemaker.jobs.training import export_events

    g = make_group(services)
    put_events(g.ctx, tracking_id=g.tracking_id, session_id="s1", user_id="u1", event_list=[
        event("i1", event_value=1.0, properties=json.dumps({"device": "tv"})), event("i2", sent_at=5.0)])
    put_events(g.ctx, tracking_id=g.tracking_id, session_id="anon", event_list=[event("i3")])
    with services.engine.connect() as conn:
        path = export_events(conn, g.arn, tmp_path / "events.parquet")
    assert path is not None
    table = read_dataset([path], parse_schema(json.dumps(INTERACTIONS)), "Interactions")
    assert table.column("USER_ID").to_pylist() == ["u1", "u1"]  # the anonymous event is not trained on
    assert table.column("ITEM_ID").to_pylist() == ["i1", "i2"]
    assert table.column("TIMESTAMP").to_pylist() == [1_700_000_000, 5]
    assert table.column("EVENT_VALUE").to_pylist() == [1.0, None]
    assert table.column("DEVICE").to_pylist() == ["tv", None]


def dataset_table(services: Services, dataset_arn: str, kind: str):  # type: ignore[no-untyped-def]
    from tastemaker.control.schemas import load_schema
    from tastemaker.data.tables import read_dataset
    from tastemaker.store import resources
    from tastemaker.store.dataset_parts import part_keys

    with services.engine.connect() as conn:
        ds = resources.get(conn, dataset_arn, "dataset")
        _res, schema = load_schema(conn, ds.body["schema_arn"])
        paths = [services.blobs.local_path(k) for k in part_keys(conn, dataset_arn)]
    return read_dataset(paths, schema, kind), ds.body.get("data_version")


def test_put_items_and_users_upsert_and_bump_data_version(services: Services) -> None:
    g = make_group(services)
    put_items(g.ctx, dataset_arn=g.datasets["Items"], items=[
        {"item_id": "i1", "properties": json.dumps({"genres": "Drama|Comedy", "price": 3, "creationTimestamp": 5})},
        {"item_id": "i2", "properties": json.dumps({"creationTimestamp": "6"})}])
    _table, version1 = dataset_table(services, g.datasets["Items"], "Items")
    put_items(g.ctx, dataset_arn=g.datasets["Items"], items=[
        {"item_id": "i1", "properties": json.dumps({"genres": "Horror", "creationTimestamp": 7})}])
    table, version2 = dataset_table(services, g.datasets["Items"], "Items")
    assert version1 and version2 and version1 != version2
    rows = {r["ITEM_ID"]: r for r in table.to_pylist()}
    assert rows["i1"] == {"ITEM_ID": "i1", "GENRES": "Horror", "PRICE": None, "CREATION_TIMESTAMP": 7}
    assert rows["i2"]["CREATION_TIMESTAMP"] == 6
    put_users(g.ctx, dataset_arn=g.datasets["Users"], users=[
        {"user_id": "u1", "properties": json.dumps({"age": 31, "membership": "gold"})}])
    users, _ = dataset_table(services, g.datasets["Users"], "Users")
    assert users.to_pylist() == [{"USER_ID": "u1", "AGE": 31, "MEMBERSHIP": "gold"}]


def test_put_items_refusals(services: Services) -> None:
    g = make_group(services)
    with pytest.raises(InvalidInputException, match=r"items\.2 \(item 2\).*PRICE"):
        put_items(g.ctx, dataset_arn=g.datasets["Items"], items=[
            {"item_id": "a", "properties": json.dumps({"creationTimestamp": 1})},
            {"item_id": "b", "properties": json.dumps({"creationTimestamp": 1, "price": "cheap"})}])
    with pytest.raises(InvalidInputException, match=r"items\.1 .*CREATION_TIMESTAMP"):
        put_items(g.ctx, dataset_arn=g.datasets["Items"], items=[{"item_id": "a"}])
    with pytest.raises(InvalidInputException, match="USERS dataset"):
        put_items(g.ctx, dataset_arn=g.datasets["Users"], items=[{"item_id": "a"}])
    with pytest.raises(ResourceNotFoundException):
        put_items(g.ctx, dataset_arn=g.datasets["Items"] + "X", items=[{"item_id": "a"}])
    table, _ = dataset_table(services, g.datasets["Items"], "Items")
    assert table.num_rows == 0
    with services.engine.begin() as conn:
        from tastemaker.store import resources

        resources.update(conn, g.datasets["Items"], status="DELETE PENDING")  # datasets are ACTIVE once created
    with pytest.raises(ResourceInUseException):
        put_items(g.ctx, dataset_arn=g.datasets["Items"],
                  items=[{"item_id": "a", "properties": json.dumps({"creationTimestamp": 1})}])


def test_put_items_part_is_plain_parquet(services: Services) -> None:
    from tastemaker.store.dataset_parts import part_keys

    g = make_group(services)
    put_items(g.ctx, dataset_arn=g.datasets["Items"],
              items=[{"item_id": "n1", "properties": json.dumps({"creationTimestamp": 1})}])
    with services.engine.connect() as conn:
        keys = part_keys(conn, g.datasets["Items"])
    assert len(keys) == 1 and "/put/" in keys[0]
    assert pq.read_table(services.blobs.local_path(keys[0])).num_rows == 1


ACTIONS = {"type": "record", "name": "Actions", "fields": [
    {"name": "ACTION_ID", "type": "string"}, {"name": "VALUE", "type": ["null", "long"]}], "version": "1.0"}
ACTION_INTERACTIONS = {"type": "record", "name": "ActionInteractions", "fields": [
    {"name": "USER_ID", "type": "string"}, {"name": "ACTION_ID", "type": "string"},
    {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"}], "version": "1.0"}


def test_put_actions_and_action_interactions(services: Services) -> None:
    from tastemaker.realtime.events_api import put_action_interactions, put_actions

    g = make_group(services, {"Interactions": INTERACTIONS, "Actions": ACTIONS,
                              "Action_Interactions": ACTION_INTERACTIONS})
    put_actions(g.ctx, dataset_arn=g.datasets["Actions"], actions=[
        {"action_id": "a1", "properties": json.dumps({"value": "5"})}])
    table, _ = dataset_table(services, g.datasets["Actions"], "Actions")
    assert table.to_pylist() == [{"ACTION_ID": "a1", "VALUE": 5}]
    put_action_interactions(g.ctx, tracking_id=g.tracking_id, action_interactions=[
        {"action_id": "a1", "user_id": "u1", "session_id": "s1", "timestamp": 10.0, "event_type": "Taken"}])
    rows = stored(services, g.datasets["Action_Interactions"])
    assert [r.record for r in rows] == [{"USER_ID": "u1", "ACTION_ID": "a1", "TIMESTAMP": 10, "EVENT_TYPE": "Taken"}]
    assert stored(services, g.arn) == []  # never mixed into the Interactions training data
    with pytest.raises(InvalidInputException, match=r"actionInteractions\.1 .*'Clicked'"):
        put_action_interactions(g.ctx, tracking_id=g.tracking_id, action_interactions=[
            {"action_id": "a1", "session_id": "s1", "timestamp": 10.0, "event_type": "Clicked"}])


def test_feed_reads_events_in_arrival_order_and_counts_items(services: Services) -> None:
    from tastemaker.realtime.feed import events_after, item_counts

    g = make_group(services)
    other = make_group(services)
    put_events(g.ctx, tracking_id=g.tracking_id, session_id="s", user_id="u",
               event_list=[event("a", 10.0), event("b", 20.0), event("a", 30.0)])
    put_events(other.ctx, tracking_id=other.tracking_id, session_id="s", event_list=[event("a", 10.0)])
    first = events_after(services.engine, g.arn)
    assert [e.item_id for e in first] == ["a", "b", "a"]
    put_events(g.ctx, tracking_id=g.tracking_id, session_id="s2", event_list=[event("c", 40.0)])
    assert [(e.item_id, e.session_id, e.user_id) for e in events_after(services.engine, g.arn, first[-1].id)] == [
        ("c", "s2", None)]
    assert item_counts(services.engine, g.arn, since=15.0) == {"a": 1, "b": 1, "c": 1}
    assert item_counts(services.engine, g.arn, since=0.0, until=35.0) == {"a": 2, "b": 1}


def test_writer_reconnects_after_its_connection_is_killed(tmp_path: Path, postgres_url: str) -> None:
    """The group-commit writer keeps one PostgreSQL connection across commits; when the server ends it (restart,
    idle timeout, pg_terminate_backend), the next PutEvents still succeeds on a new connection."""
    from tastemaker.cli.wiring import build_services
    from tastemaker.config import Settings

    services = build_services(Settings(data_dir=tmp_path / "data", db_url=postgres_url))
    try:
        g = make_group(services)
        put_events(g.ctx, tracking_id=g.tracking_id, session_id="s", user_id="u", event_list=[event("i1")])
        writer = services.realtime.writer()
        pid = writer.conn.driver_connection.info.backend_pid
        with services.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
        put_events(g.ctx, tracking_id=g.tracking_id, session_id="s", user_id="u",
                   event_list=[event("i2"), event("i3")])
        assert [r.item_id for r in stored(services, g.arn)] == ["i1", "i2", "i3"]
        assert writer.conn.driver_connection.info.backend_pid != pid
    finally:
        services.engine.dispose()
