"""Erasing a deleted resource's streamed events and real-time state, and caches that must not outlive them."""

from __future__ import annotations

import time

from tastemaker.control.context import Services
from tastemaker.realtime.erase import erase_for_resource
from tastemaker.realtime.events_api import put_events
from tastemaker.serving.history import streamed_events
from tastemaker.store import events as stored
from tastemaker.store import resources
from tests.realtime.conftest import activate_all, make_group


def click(item: str) -> dict[str, object]:
    return {"event_type": "click", "item_id": item, "sent_at": 1_700_000_000.0}


def test_erasing_a_partition_goes_in_batches_and_spares_other_groups(services: Services) -> None:
    g, other = make_group(services), make_group(services)
    for n in range(5):
        put_events(g.ctx, tracking_id=g.tracking_id, session_id=f"s{n}", user_id="u",
                   event_list=[click(f"i{n}-{j}") for j in range(4)])
    put_events(other.ctx, tracking_id=other.tracking_id, session_id="s", user_id="u", event_list=[click("keep")])
    assert stored.erase_partition(services.engine, g.arn, batch=3) == 20
    assert stored.count(services.engine, g.arn) == 0
    assert stored.count(services.engine, other.arn) == 1


def test_deleting_the_tracker_keeps_events_and_the_interactions_dataset_erases_them(services: Services) -> None:
    g = make_group(services)
    put_events(g.ctx, tracking_id=g.tracking_id, session_id="s", user_id="u", event_list=[click("i1")])
    with services.engine.connect() as conn:
        tracker = resources.children(conn, kind="event_tracker", dataset_group_arn=g.arn)[0]
        items = resources.get(conn, g.datasets["Items"], "dataset")
        interactions = resources.get(conn, g.datasets["Interactions"], "dataset")
    assert erase_for_resource(services, tracker) == 0  # a tracker's events belong to the Interactions dataset
    assert erase_for_resource(services, items) == 0
    assert stored.count(services.engine, g.arn) == 1
    assert erase_for_resource(services, interactions) == 1
    assert stored.count(services.engine, g.arn) == 0


def test_a_recreated_tracker_generation_drops_cached_recent_events(services: Services) -> None:
    """Another process erased the group and a tracker was created again: this process's cache must not serve
    the erased events (its entries would otherwise live until the next full refresh)."""
    from tastemaker.control.event_trackers import create_event_tracker

    g = make_group(services)
    put_events(g.ctx, tracking_id=g.tracking_id, session_id="s", user_id="u", event_list=[click("old")])
    assert streamed_events(services, g.arn, "u").item_ids == ["old"]
    stored.erase_partition(services.engine, g.arn)  # as the delete job in another process does
    with services.engine.begin() as conn:
        tracker = resources.children(conn, kind="event_tracker", dataset_group_arn=g.arn)[0]
        resources.delete(conn, tracker.arn)
    created = create_event_tracker(g.ctx, name="again", dataset_group_arn=g.arn)
    activate_all(services)
    deadline = time.time() + 10  # the tracker lookup is refreshed about once a second
    while streamed_events(services, g.arn, "u").item_ids and time.time() < deadline:
        time.sleep(0.1)
    assert streamed_events(services, g.arn, "u").item_ids == []
    put_events(g.ctx, tracking_id=created["tracking_id"], session_id="s", user_id="u", event_list=[click("new")])
    assert streamed_events(services, g.arn, "u").item_ids == ["new"]
