"""TrainingData.from_tables: encoding, catalogue, event selection, metadata, minimum-data rules."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tastemaker.recipes.training_data import InsufficientDataError, TrainingConfig, TrainingData, distinct


def interactions(n_users: int = 150, per_user: int = 20) -> pa.Table:
    rng = np.random.default_rng(0)
    n = n_users * per_user
    return pa.table({
        "USER_ID": pa.array([f"u{u}" for u in np.repeat(np.arange(n_users), per_user)]),
        "ITEM_ID": pa.array([f"i{i}" for i in rng.integers(0, 50, n)]),
        "TIMESTAMP": pa.array(rng.integers(1_000, 2_000, n), pa.int64()),
        "EVENT_TYPE": pa.array(np.where(np.arange(n) % 4 == 0, "Purchase", "View")),
        "EVENT_VALUE": pa.array([None if k % 10 == 0 else float(k % 5) for k in range(n)], pa.float32()),
    })


def test_codes_catalogue_and_ordering():
    table = interactions()
    items = pa.table({"ITEM_ID": ["i1", "only-in-items"], "GENRES": ["a|B", "b"],
                      "CREATION_TIMESTAMP": pa.array([5, 7], pa.int64())})
    d = TrainingData.from_tables(table, items, None, TrainingConfig())
    assert d.n_interactions == table.num_rows
    assert "only-in-items" in d.item_ids.tolist() and d.n_items == 51
    # Sorted by (user, timestamp).
    order = np.lexsort((d.timestamps, d.users))
    assert (order == np.arange(d.n_interactions)).all()
    # The ids round-trip.
    pairs = set(zip(d.user_ids[d.users].tolist(), d.item_ids[d.items].tolist(), strict=True))
    raw = set(zip(table.column("USER_ID").to_pylist(), table.column("ITEM_ID").to_pylist(), strict=True))
    assert pairs == raw
    matrix, values = d.item_metadata.categorical["GENRES"]
    assert sorted(values.tolist()) == ["a", "b"]  # lower-cased, split on |
    row = d.item_ids.tolist().index("i1")
    assert matrix[row].toarray().sum() == 2
    first = d.item_first_seen()
    assert first[d.item_ids.tolist().index("only-in-items")] == 7
    assert first[row] == 5


def test_event_type_and_value_threshold_filter():
    table = interactions()
    d = TrainingData.from_tables(table, None, None, TrainingConfig(event_type="View"))
    assert d.n_interactions == table.num_rows * 3 // 4
    assert {d.event_type_names[t] for t in np.unique(d.event_types)} == {"View"}
    thresholded = TrainingData.from_tables(table, None, None, TrainingConfig(event_value_threshold=3.0))
    assert (thresholded.event_values >= 3.0).all()


def test_events_config_weights_and_selects_types():
    config = TrainingConfig(events_config=[("Purchase", None, 3.0), ("View", 2.0, 1.0)])
    d = TrainingData.from_tables(interactions(), None, None, config)
    assert d.has_event_weights
    names = np.array(d.event_type_names)[d.event_types]
    assert (d.weights[names == "Purchase"] == 3.0).all()
    assert (d.event_values[names == "View"] >= 2.0).all()


def test_excluded_columns_are_dropped():
    items = pa.table({"ITEM_ID": ["i1"], "GENRES": ["a"], "COLOR": ["red"]})
    config = TrainingConfig(excluded_columns={"Items": ["color"]})
    d = TrainingData.from_tables(interactions(), items, None, config)
    assert d.item_metadata.columns == ["GENRES"]


def test_fewer_than_1000_interactions_fails_with_personalizes_message():
    with pytest.raises(InsufficientDataError, match="Create failed. Dataset has fewer than 1000 interactions"):
        TrainingData.from_tables(interactions(n_users=40), None, None, TrainingConfig())


def test_filtering_can_leave_too_little_data():
    with pytest.raises(InsufficientDataError, match="fewer than 1000 interactions"):
        TrainingData.from_tables(interactions(), None, None, TrainingConfig(event_type="Purchase"))


def test_fewer_than_25_users_with_two_interactions_fails():
    with pytest.raises(InsufficientDataError,
                       match="Create failed. Dataset has fewer than 25 users with at least 2 interactions each."):
        TrainingData.from_tables(interactions(n_users=20, per_user=60), None, None, TrainingConfig())


def test_domain_message_names_the_event_type():
    config = TrainingConfig(event_type="Purchase", domain_event_type_message=True)
    with pytest.raises(InsufficientDataError,
                       match="Dataset has fewer than 1000 interactions after filtering by event type: Purchase"):
        TrainingData.from_tables(interactions(), None, None, config)


def test_session_only_events_are_stitched_to_the_sessions_user(tmp_path):
    """PutEvents with only a sessionId train as the userId that session carried next (else last); sessions
    that never carried a userId stay out of the exported Interactions part."""
    import json

    import pyarrow.parquet as pq

    from tastemaker.cli.wiring import build_services
    from tastemaker.config import Settings
    from tastemaker.jobs.training import export_events
    from tastemaker.realtime.events_api import put_events
    from tests.realtime.conftest import make_group

    services = build_services(Settings(data_dir=tmp_path / "data"))
    group = make_group(services)

    def send(session, user, *items, properties=None):
        put_events(group.ctx, tracking_id=group.tracking_id, session_id=session, user_id=user, event_list=[
            {"event_type": "click", "item_id": item, "sent_at": 1_700_000_000 + n,
             **({"properties": json.dumps(properties)} if properties else {})} for n, item in enumerate(items)])

    send("s1", None, "anon-1", "anon-2", properties={"device": "tv"})
    send("s1", "alice", "a1")  # the login: s1's earlier anonymous events become alice's
    send("s1", None, "after-logout")  # no later login in s1: the last userId it carried
    send("s2", None, "never-linked")
    send("s3", "bob", "b1")
    send("s3", None, "bob-anon")
    send("s3", "carol", "c1")  # s3 changed hands: bob-anon went before carol's first event, so it is carol's
    with services.engine.connect() as conn:
        path = export_events(conn, group.arn, tmp_path / "events.parquet")
    table = pq.read_table(path)
    pairs = list(zip(table.column("USER_ID").to_pylist(), table.column("ITEM_ID").to_pylist(), strict=True))
    assert pairs == [("alice", "anon-1"), ("alice", "anon-2"), ("alice", "a1"), ("alice", "after-logout"),
                     ("bob", "b1"), ("carol", "bob-anon"), ("carol", "c1")]
    assert table.column("DEVICE").to_pylist()[:2] == ["tv", "tv"]  # the rest of the record is kept
    data = TrainingData.from_tables(table, None, None, TrainingConfig(), check_minimum=False)
    assert sorted(data.user_ids.tolist()) == ["alice", "bob", "carol"]
    assert np.bincount(data.users).tolist() == [4, 1, 2]

    send("s9", None, "x")  # a group with only unlinked sessions exports nothing
    other = make_group(services)
    put_events(other.ctx, tracking_id=other.tracking_id, session_id="s", user_id=None,
               event_list=[{"event_type": "click", "item_id": "x", "sent_at": 1.0}])
    with services.engine.connect() as conn:
        assert export_events(conn, other.arn, tmp_path / "other.parquet") is None
    services.engine.dispose()


def test_distinct_equals_np_unique() -> None:
    rng = np.random.default_rng(0)
    for values in (rng.integers(0, 50, 1000), rng.integers(-5, 5, 7).astype(np.int32), np.zeros(0, np.int64),
                   np.array([3]), rng.random(100).round(1)):
        got = distinct(values)
        assert got.dtype == values.dtype and got.tolist() == np.unique(values).tolist()
