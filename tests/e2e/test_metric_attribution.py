"""Metric attribution through boto3: events carrying recommendationIds from two campaigns (and a custom
eventAttributionSource) are attributed to their source; `tastemaker attribution` reads back SUM and SAMPLECOUNT
that match an independent count of the events sent. Plus the control plane's limits and errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from tests.e2e.datagen import INTERACTIONS_SCHEMA, ITEMS_SCHEMA, write_dataset
from tests.e2e.util import train_and_deploy, wait_status

ROLE = "arn:aws:iam::000000000000:role/PersonalizeMetrics"
METRICS = [
    {"eventType": "purchase", "metricName": "REVENUE", "expression": "SUM(Items.PRICE)"},
    {"eventType": "purchase", "metricName": "PURCHASE_VALUE", "expression": "SUM(Interactions.EVENT_VALUE)"},
    {"eventType": "click", "metricName": "CLICKS", "expression": "SAMPLECOUNT()"},
]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def world(personalize, import_root: Path) -> dict:  # type: ignore[no-untyped-def]
    folder = import_root / "attribution"
    paths = write_dataset(folder)
    table = pcsv.read_csv(paths["interactions"])
    table = table.append_column("RECOMMENDATION_ID", pa.nulls(table.num_rows, pa.string()))
    table = table.append_column("EVENT_ATTRIBUTION_SOURCE", pa.nulls(table.num_rows, pa.string()))
    pcsv.write_csv(table, paths["interactions"])
    interactions_schema = dict(INTERACTIONS_SCHEMA, fields=[
        *INTERACTIONS_SCHEMA["fields"], {"name": "RECOMMENDATION_ID", "type": ["null", "string"]},
        {"name": "EVENT_ATTRIBUTION_SOURCE", "type": ["null", "string"]}])
    group = personalize.create_dataset_group(name=unique("attr"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    for kind, schema, path in (("Interactions", interactions_schema, paths["interactions"]),
                               ("Items", ITEMS_SCHEMA, paths["items"])):
        schema_arn = personalize.create_schema(name=unique(kind.lower()), schema=json.dumps(schema))["schemaArn"]
        ds = personalize.create_dataset(name=unique(kind.lower()), schemaArn=schema_arn, datasetGroupArn=group,
                                        datasetType=kind)["datasetArn"]
        wait_status(lambda ds=ds: personalize.describe_dataset(datasetArn=ds), "dataset")
        job = personalize.create_dataset_import_job(jobName=unique("imp"), datasetArn=ds,
                                                    dataSource={"dataLocation": str(path)})["datasetImportJobArn"]
        done = wait_status(lambda job=job: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                           "datasetImportJob")
        assert done["status"] == "ACTIVE", done.get("failureReason")
    campaigns = [train_and_deploy(personalize, group, recipe, unique("attr"))[1]
                 for recipe in ("aws-popularity-count", "aws-user-personalization")]
    tracker = personalize.create_event_tracker(name=unique("trk"), datasetGroupArn=group)
    wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]),
                "eventTracker")
    prices = {row["ITEM_ID"]: float(row["PRICE"]) for row in pcsv.read_csv(paths["items"]).to_pylist()}
    return {"group": group, "campaigns": campaigns, "tracking_id": tracker["trackingId"], "prices": prices}


def attributed(server) -> list[dict]:  # type: ignore[no-untyped-def]
    out = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "attribution", "--json",
                          "--data-dir", str(server.data_dir)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def attribution(personalize, runtime, events, world) -> str:  # type: ignore[no-untyped-def]
    """The group's metric attribution, created after one attributed click that must therefore never count."""
    early = runtime.get_recommendations(campaignArn=world["campaigns"][0], userId="u1", numResults=5)
    events.put_events(trackingId=world["tracking_id"], userId="u1", sessionId="s-early", eventList=[
        {"eventType": "click", "itemId": early["itemList"][0]["itemId"], "sentAt": time.time(),
         "recommendationId": early["recommendationId"]}])  # before the attribution exists: never counted
    arn = personalize.create_metric_attribution(name=unique("ma"), datasetGroupArn=world["group"], metrics=METRICS,
                                                metricsOutputConfig={"roleArn": ROLE})["metricAttributionArn"]
    assert wait_status(lambda: personalize.describe_metric_attribution(metricAttributionArn=arn),
                       "metricAttribution")["status"] == "ACTIVE"
    return str(arn)


@pytest.fixture(scope="module")
def comparison(personalize, world) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The opt-in comparison arm: half of the second campaign's traffic answered by the first."""
    main, arm = world["campaigns"][1], world["campaigns"][0]
    personalize.tag_resource(resourceArn=main, tags=[{"tagKey": "tastemaker:comparison-arm", "tagValue": arm},
                                                     {"tagKey": "tastemaker:comparison-share", "tagValue": "0.5"}])
    time.sleep(1.5)  # the tags are re-read about once a second
    return main, arm


def arms(server) -> list[dict]:  # type: ignore[no-untyped-def]
    out = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "attribution", "--arms", "--json",
                          "--data-dir", str(server.data_dir)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_events_are_attributed_to_the_campaign_that_recommended(personalize, runtime, events, server, world,
                                                                 attribution) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    arn = attribution
    expected: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    sources = [*world["campaigns"], "newsletter"]
    for n in range(60):
        user = f"u{n % 40}"
        source = sources[n % 3]
        campaign = world["campaigns"][n % 2] if source == "newsletter" else source
        answer = runtime.get_recommendations(campaignArn=campaign, userId=user, numResults=5)
        item = answer["itemList"][int(rng.integers(0, 5))]["itemId"]
        event: dict = {"itemId": item, "sentAt": time.time()}
        if source == "newsletter":
            event["metricAttribution"] = {"eventAttributionSource": "newsletter"}
        else:
            event["recommendationId"] = answer["recommendationId"]
        if rng.random() < 0.4:
            value = float(rng.integers(1, 50))
            event.update(eventType="purchase", eventValue=value)
            expected[(source, "REVENUE")][0] += world["prices"][item]
            expected[(source, "REVENUE")][1] += 1
            expected[(source, "PURCHASE_VALUE")][0] += value
            expected[(source, "PURCHASE_VALUE")][1] += 1
        else:
            event["eventType"] = "click"
            expected[(source, "CLICKS")][0] += 1
            expected[(source, "CLICKS")][1] += 1
        unattributed = {"eventType": event["eventType"], "itemId": item, "sentAt": time.time()}
        events.put_events(trackingId=world["tracking_id"], userId=user, sessionId=f"s{n}",
                          eventList=[event, unattributed])
    rows = [r for r in attributed(server) if r["metricAttributionArn"] == arn]
    got = {(r["source"], r["metricName"]): (r["sum"], r["sampleCount"]) for r in rows}
    assert set(got) == set(expected)
    for key, (total, count) in expected.items():
        assert got[key][1] == count, key
        assert got[key][0] == pytest.approx(total), key
    assert all(w["start"] % 900 == 0 for r in rows for w in r["windows"])
    again = {(r["source"], r["metricName"]): (r["sum"], r["sampleCount"]) for r in attributed(server)
             if r["metricAttributionArn"] == arn}
    assert again == got  # reading twice counts nothing twice


def test_a_comparison_arm_gets_its_share_and_its_own_conversions(runtime, events, server, world, attribution,
                                                                 comparison) -> None:  # type: ignore[no-untyped-def]
    """The opt-in extension: half of campaign B's traffic answered by campaign A, conversions per arm."""
    main, _ = comparison
    before = sum(r["sampleCount"] for r in attributed(server) if r["source"] == main and r["metricName"] == "CLICKS")
    arm_digest = hashlib.sha1(f"{main}#comparison".encode()).hexdigest()[:8]
    served = {"main": 0, "comparison": 0}
    clicks = {"main": 0, "comparison": 0}
    for n in range(80):
        answer = runtime.get_recommendations(campaignArn=main, userId=f"u{n % 50}", numResults=5)
        which = "comparison" if answer["recommendationId"][4:12] == arm_digest else "main"
        served[which] += 1
        if n % 3 == 0:
            clicks[which] += 1
            events.put_events(trackingId=world["tracking_id"], userId=f"u{n % 50}", sessionId=f"arm{n}", eventList=[
                {"eventType": "click", "itemId": answer["itemList"][0]["itemId"], "sentAt": time.time(),
                 "recommendationId": answer["recommendationId"]}])
    assert served["main"] > 10 and served["comparison"] > 10
    deadline = time.time() + 15
    rows: list[dict] = []
    while time.time() < deadline:
        rows = [r for r in arms(server) if r["campaign"] == main and r["metricName"] == "CLICKS"]
        if rows and rows[0]["main"]["served"] + rows[0]["comparison"]["served"] == 80:
            break
        time.sleep(0.5)
    [row] = rows
    for arm_name in ("main", "comparison"):
        assert row[arm_name]["served"] == served[arm_name]
        earlier = before if arm_name == "main" else 0  # the campaign's clicks before the arm existed
        assert row[arm_name]["events"] == clicks[arm_name] + earlier
        low, high = row[arm_name]["rate95"]
        assert low <= (clicks[arm_name] + earlier) / served[arm_name] <= high
    assert "difference" in row


def test_the_console_shows_each_sources_figures_and_the_arms(runtime, events, server, world, attribution,
                                                            comparison) -> None:  # type: ignore[no-untyped-def]
    """The group's batch and attribution page shows what `tastemaker attribution [--arms]` prints."""
    from tests.console.test_sessions import sign_in

    main, _ = comparison
    for n in range(6):  # attributed clicks on the campaign with an arm, so there is something to show
        answer = runtime.get_recommendations(campaignArn=main, userId=f"u{n}", numResults=5)
        events.put_events(trackingId=world["tracking_id"], userId=f"u{n}", sessionId=f"page{n}", eventList=[
            {"eventType": "click", "itemId": answer["itemList"][0]["itemId"], "sentAt": time.time(),
             "recommendationId": answer["recommendationId"]}])
    deadline, entries, shown_arms = time.time() + 15, attributed(server), arms(server)
    while time.time() < deadline:  # served counts are flushed about once a second: wait until they settle
        time.sleep(1.0)
        now, now_arms = attributed(server), arms(server)
        if (now, now_arms) == (entries, shown_arms) and now_arms:
            break
        entries, shown_arms = now, now_arms
    assert entries and shown_arms
    page = sign_in(server, server.access_key, server.secret_key).get(
        "/console/jobs", params={"arn": world["group"]}).text
    table = page[page.index('id="attributed"'):].split("</table>")[0]
    for e in entries:
        assert e["source"] in table and f"<td>{e['sampleCount']}</td>" in table, e
    for row in shown_arms:
        caption = f"{row['metricName']} · comparison arm of <span class=\"arn\">{row['campaign']}</span>"
        assert caption in page, caption
        shown = page[page.index(caption):].split("</table>")[0]
        for arm in ("main", "comparison"):
            assert f"<td>{arm}</td><td>{row[arm]['served']}</td><td>{row[arm]['events']}</td>" in shown


def test_control_plane_limits_and_errors(personalize, world, attribution) -> None:  # type: ignore[no-untyped-def]
    [summary] = personalize.list_metric_attributions(datasetGroupArn=world["group"])["metricAttributions"]
    arn = summary["metricAttributionArn"]
    described = personalize.describe_metric_attribution(metricAttributionArn=arn)["metricAttribution"]
    assert described["datasetGroupArn"] == world["group"]
    assert described["metricsOutputConfig"] == {"roleArn": ROLE}
    listed = personalize.list_metric_attribution_metrics(metricAttributionArn=arn)["metrics"]
    assert {m["metricName"] for m in listed} == {"REVENUE", "PURCHASE_VALUE", "CLICKS"}
    with pytest.raises(personalize.exceptions.LimitExceededException, match="only one"):
        personalize.create_metric_attribution(name=unique("ma"), datasetGroupArn=world["group"], metrics=METRICS,
                                              metricsOutputConfig={"roleArn": ROLE})
    with pytest.raises(personalize.exceptions.InvalidInputException, match="AVG"):
        personalize.update_metric_attribution(metricAttributionArn=arn, addMetrics=[
            {"eventType": "click", "metricName": "X", "expression": "AVG(Interactions.EVENT_VALUE)"}])
    with pytest.raises(personalize.exceptions.InvalidInputException, match="GENRES"):
        personalize.update_metric_attribution(metricAttributionArn=arn, addMetrics=[
            {"eventType": "click", "metricName": "X", "expression": "SUM(Items.GENRES)"}])
    with pytest.raises(personalize.exceptions.LimitExceededException, match="10 metrics"):
        personalize.update_metric_attribution(metricAttributionArn=arn, addMetrics=[
            {"eventType": "click", "metricName": f"M{k}", "expression": "SAMPLECOUNT()"} for k in range(8)])
    personalize.update_metric_attribution(metricAttributionArn=arn, removeMetrics=["CLICKS"], addMetrics=[
        {"eventType": "watch", "metricName": "WATCHES", "expression": "samplecount()"}])
    listed = personalize.list_metric_attribution_metrics(metricAttributionArn=arn)["metrics"]
    assert {m["metricName"] for m in listed} == {"REVENUE", "PURCHASE_VALUE", "WATCHES"}
    wait_status(lambda: personalize.describe_metric_attribution(metricAttributionArn=arn), "metricAttribution")
    with pytest.raises(personalize.exceptions.ResourceInUseException):
        personalize.delete_dataset_group(datasetGroupArn=world["group"])
    personalize.delete_metric_attribution(metricAttributionArn=arn)
    with pytest.raises(personalize.exceptions.ResourceNotFoundException):
        personalize.describe_metric_attribution(metricAttributionArn=arn)
