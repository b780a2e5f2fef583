"""The event tracker page lists the newest events its group received (PutEvents and PutActionInteractions), and only
for a key that may see it."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tastemaker.cli.local_server import LocalServer
from tastemaker.console.charts import figures_in
from tests.console.test_sessions import READ_ONLY, sign_in
from tests.e2e.datagen import INTERACTIONS_SCHEMA, schema_json
from tests.e2e.test_access_keys import create_key
from tests.e2e.util import wait_status

pytestmark = pytest.mark.slow

ROW = re.compile(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>"
                 r"<td>([^<]*)</td></tr>")
ACTION_INTERACTIONS = {"type": "record", "name": "ActionInteractions", "fields": [
    {"name": "USER_ID", "type": "string"}, {"name": "ACTION_ID", "type": "string"},
    {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"}], "version": "1.0"}


def _tracker(srv: LocalServer, name: str, actions: bool = False) -> dict[str, Any]:
    personalize = srv.client("personalize")
    group = personalize.create_dataset_group(name=name)["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    kinds = [("Interactions", INTERACTIONS_SCHEMA)] + ([("Action_Interactions", ACTION_INTERACTIONS)] if actions else [])
    for kind, fields in kinds:
        schema = personalize.create_schema(name=f"{name}-{kind}", schema=schema_json(fields))["schemaArn"]
        dataset = personalize.create_dataset(name=f"{name}-{kind}", datasetGroupArn=group, datasetType=kind,
                                             schemaArn=schema)["datasetArn"]
        wait_status(lambda dataset=dataset: personalize.describe_dataset(datasetArn=dataset), "dataset")
    tracker = personalize.create_event_tracker(name=name, datasetGroupArn=group)
    wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]),
                "eventTracker")
    return tracker


def _rows(page: str) -> list[tuple[str, ...]]:
    table = page[page.index('id="latest-events"'):page.index("</table>", page.index('id="latest-events"'))]
    return ROW.findall(table)


def test_the_tracker_page_shows_its_newest_twenty_events(console_server: LocalServer) -> None:
    srv = console_server
    tracker, other = _tracker(srv, "console-latest", actions=True), _tracker(srv, "console-latest-other")
    root = sign_in(srv, srv.access_key, srv.secret_key)
    empty = root.get("/console/tracker", params={"arn": tracker["eventTrackerArn"]}).text
    assert 'id="no-events"' in empty and 'id="latest-events"' not in empty

    events = srv.client("personalize-events")
    for n in range(25):  # one call per event: arrival order is the order sent
        events.put_events(trackingId=tracker["trackingId"], userId=f"u{n % 3}", sessionId=f"s{n % 2}",
                          eventList=[{"eventType": "watch" if n % 2 else "click", "itemId": f"i{n}",
                                      "sentAt": time.time()}])
    events.put_events(trackingId=other["trackingId"], userId="elsewhere", sessionId="s-other",
                      eventList=[{"eventType": "click", "itemId": "other-item", "sentAt": time.time()}])

    events.put_action_interactions(trackingId=tracker["trackingId"], actionInteractions=[  # the tracker's id
        {"actionId": f"a{n}", "userId": "u-act", "sessionId": "s-act", "eventType": "Taken",
         "timestamp": time.time()} for n in range(2)])
    events.put_events(trackingId=tracker["trackingId"], userId="u-last", sessionId="s-last",
                      eventList=[{"eventType": "click", "itemId": "i-last", "sentAt": time.time()}])

    page = root.get("/console/tracker", params={"arn": tracker["eventTrackerArn"]}).text
    rows = _rows(page)
    assert [r[1:] for r in rows] == [  # the newest 20 of both calls, newest first
        ("u-last", "s-last", "click", "i-last", "PutEvents"),
        *[("u-act", "s-act", "Taken", f"a{n}", "PutActionInteractions") for n in (1, 0)],
        *[(f"u{n % 3}", f"s{n % 2}", "watch" if n % 2 else "click", f"i{n}", "PutEvents") for n in range(24, 7, -1)]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", r[0]) for r in rows), rows
    live = figures_in(page[page.index('id="tracker-live"'):])[0]["data"][0]  # events received per 10 seconds
    assert live["name"] == "Events received" and sum(live["y"]) == 28 and live["width"] == 10 * 1000 * 0.9
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d: \d+ events", t) for t in live["text"]), live["text"]
    fragment = root.get("/console/tracker/live", params={"arn": tracker["eventTrackerArn"]})
    assert fragment.status_code == 200 and fragment.headers["cache-control"] == "no-store"
    assert [sum(f["data"][0]["y"]) for f in figures_in(fragment.text)] == [28]  # what console.js redraws
    assert "other-item" not in page and "elsewhere" not in page  # another group's tracker's events stay there
    other_page = root.get("/console/tracker", params={"arn": other["eventTrackerArn"]}).text
    assert [r[1:] for r in _rows(other_page)] == [("elsewhere", "s-other", "click", "other-item", "PutEvents")]

    key, secret = create_key(srv.data_dir, "console-reader-events", READ_ONLY)
    assert [r[1:] for r in _rows(sign_in(srv, key, secret).get(
        "/console/tracker", params={"arn": tracker["eventTrackerArn"]}).text)] == [r[1:] for r in rows]

    denied_policy = {"Version": "2012-10-17", "Statement": [
        *READ_ONLY["Statement"],
        {"Effect": "Deny", "Resource": tracker["eventTrackerArn"], "Action": ["personalize:DescribeEventTracker"]}]}
    key, secret = create_key(srv.data_dir, "console-no-tracker", denied_policy)
    refused = sign_in(srv, key, secret).get("/console/tracker", params={"arn": tracker["eventTrackerArn"]})
    assert refused.status_code == 404 and "not authorized" in refused.text
    live_refused = sign_in(srv, key, secret).get("/console/tracker/live", params={"arn": tracker["eventTrackerArn"]})
    assert live_refused.status_code == 404 and "chart-figure" not in live_refused.text
    assert 'id="latest-events"' not in refused.text and "<td>i24</td>" not in refused.text
