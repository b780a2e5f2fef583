"""The console's monitoring, audit, upload, filter preview, batch and evaluation screens over plain HTTP
against a live server (the browser test walks the key flows)."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tastemaker.cli.local_server import LocalServer
from tastemaker.console.charts import figures_in
from tests.console.test_sessions import READ_ONLY, csrf, sign_in
from tests.e2e.datagen import GENRES, INTERACTIONS_SCHEMA, schema_json, write_dataset
from tests.e2e.test_access_keys import create_key
from tests.e2e.util import wait_status

pytestmark = pytest.mark.slow


def _group(srv: LocalServer, name: str) -> str:
    personalize = srv.client("personalize")
    arn: str = personalize.create_dataset_group(name=name)["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    return arn


def test_monitoring_charts_a_trackers_events_per_minute(console_server: LocalServer, trained: dict[str, Any]) -> None:
    srv, group = console_server, trained["group"]
    client = sign_in(srv, srv.access_key, srv.secret_key)
    empty = client.get("/console/monitoring", params={"arn": _group(srv, "console-unmonitored")})
    assert empty.status_code == 200 and 'id="no-panels"' in empty.text
    personalize = srv.client("personalize")
    tracker = personalize.create_event_tracker(name="monitored-site", datasetGroupArn=group)
    wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]),
                "eventTracker")
    events = srv.client("personalize-events")
    for n in range(7):
        events.put_events(trackingId=tracker["trackingId"], userId="u1", sessionId="s1",
                          eventList=[{"eventType": "click", "itemId": f"i{n}", "sentAt": time.time()}])
    runtime = srv.client("personalize-runtime")
    for _ in range(3):
        runtime.get_recommendations(campaignArn=trained["campaign"], userId="u2")
    page = client.get("/console/monitoring", params={"arn": group}).text
    tracker_panel = page[page.index("Event tracker monitored-site"):]
    campaign_panel = page[page.index("Campaign console-trained"):]
    campaign_panel = campaign_panel[:campaign_panel.index("<section")]
    tracked, served = figures_in(tracker_panel), figures_in(campaign_panel)
    assert [f["data"][0]["name"] for f in tracked] == [
        "PutEventsRequests", "PutEvents4xxErrors", "PutEvents5xxErrors", "PutEventLatency"]
    assert [f["data"][0]["name"] for f in served] == [
        "GetRecommendations", "GetRecommendations4xxErrors", "GetRecommendations5xxErrors", "GetRecommendationsLatency"]
    requests = tracked[0]["data"][0]
    assert sum(requests["y"]) == 7, requests  # the seven PutEvents, one bar per minute they fell in
    assert all(re.fullmatch(r"\d\d:\d\d: \d+ calls", t) for t in requests["text"])  # the hover: exact figures
    assert "total 7 · peak" in tracker_panel  # the caption, for readers without the plot
    assert [len(f["data"][0]["y"]) for f in tracked[1:3]] == [0, 0]  # no errors: empty charts that say so
    assert tracker_panel.count("no data yet") >= 2 and tracked[1]["layout"]["annotations"][0]["text"] == "no data yet"
    assert len(tracked[3]["data"][0]["y"]) >= 1 and all(v > 0 for v in tracked[3]["data"][0]["y"])  # latency, ms
    assert sum(served[0]["data"][0]["y"]) >= 3, served[0]  # the three GetRecommendations (and any others)
    tracker_page = client.get("/console/tracker", params={"arn": tracker["eventTrackerArn"]}).text
    charts = figures_in(tracker_page[tracker_page.index('id="tracker-charts"'):])
    assert [f["data"][0]["name"] for f in charts] == ["PutEventsRequests", "PutEvents4xxErrors"]
    assert sum(charts[0]["data"][0]["y"]) == 7 and charts[0]["data"][0]["x"] == requests["x"]


def test_the_audit_trail_shows_console_changes_and_refusals_and_is_searchable(console_server: LocalServer) -> None:
    srv = console_server
    client = sign_in(srv, srv.access_key, srv.secret_key)
    token = csrf(client.get("/console/groups").text)
    assert client.post("/console/groups", data={"name": "console-audited", "csrf": token}).status_code == 303
    key, secret = create_key(srv.data_dir, "console-audit-reader", READ_ONLY)
    reader = sign_in(srv, key, secret)
    refused = reader.post("/console/groups", data={"name": "not-allowed", "csrf": csrf(reader.get(
        "/console/groups").text)})
    assert refused.status_code == 400

    page = client.get("/console/audit", params={"key": "EventName", "value": "CreateDatasetGroup"}).text
    rows = re.findall(r"<tr><td>[^<]*</td><td class=\"event\">.*?</tr>", page, re.DOTALL)
    made = [r for r in rows if "console-audited" in r]
    assert made and "tastemaker-console" in made[0] and ">ok<" in made[0] and srv.access_key in made[0]
    denied = [r for r in rows if "console-audit-reader" in r]
    assert denied and "AccessDenied" in denied[0]
    assert all("CreateDatasetGroup" in r for r in rows)
    other = client.get("/console/audit", params={"key": "EventName", "value": "NoSuchCall"}).text
    assert 'id="audit-empty"' in other
    # The read-only key may not read the trail (its policy allows personalize reads only): said on the page.
    assert "cloudtrail:LookupEvents" in reader.get("/console/audit").text


def _history_of(path: Path, user: str) -> set[str]:
    with path.open() as fh:
        return {row["ITEM_ID"] for row in csv.DictReader(fh) if row["USER_ID"] == user}


def test_why_this_item_beside_each_recommendation(console_server: LocalServer, trained: dict[str, Any]) -> None:
    srv = console_server
    client = sign_in(srv, srv.access_key, srv.secret_key)
    url = "/console/campaign?arn=" + trained["campaign"]
    page = client.post(url, data={"csrf": csrf(client.get(url).text), "userId": "u7", "numResults": "5"}).text
    assert "Why this item" in page
    cells = re.findall(r'<td class="why">(.*?)</td>', page, re.DOTALL)
    assert len(cells) == 5 and all('<span class="slot">model</span>' in c for c in cells)
    carriers = re.findall(r'<b class="because">([^<]+)</b>', page)
    assert carriers and set(carriers) <= _history_of(trained["paths"]["interactions"], "u7")
    assert "shares GENRES" in page  # the items data: a recommended item shares its genre with what carried it


def test_tastemaker_explain_prints_the_same_evidence(console_server: LocalServer, trained: dict[str, Any]) -> None:
    done = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "explain", trained["campaign"], "--user-id",
                           "u7", "--num-results", "5", "--json", "--data-dir", str(console_server.data_dir)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report["items"]) == 5 and report["userId"] == "u7"
    history = _history_of(trained["paths"]["interactions"], "u7")
    for item in report["items"]:
        assert item["slot"] == "model" and item["itemId"].startswith("i")
        lifts = [e["contribution"] for e in item["events"]]
        assert lifts == sorted(lifts, reverse=True) and all(v > 0 for v in lifts)
        assert {e["itemId"] for e in item["events"]} <= history
    assert any(item["events"] for item in report["items"])
    text = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "explain", trained["campaign"], "--user-id",
                           "u7", "--num-results", "3", "--data-dir", str(console_server.data_dir)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert text.returncode == 0 and "carried by your event on i" in text.stdout, text.stdout + text.stderr
    related = json.loads(subprocess.run(
        [sys.executable, "-m", "tastemaker.cli.main", "explain", trained["sims"], "--item-id", "i3", "--num-results",
         "5", "--json", "--data-dir", str(console_server.data_dir)], capture_output=True, text=True, timeout=120,
        check=True).stdout)
    scores = [item["relatedTo"]["score"] for item in related["items"]]
    assert len(scores) == 5 and all(item["relatedTo"]["itemId"] == "i3" for item in related["items"])
    assert scores == sorted(scores, reverse=True)  # SIMS ranks by the very similarity the explanation reports
    missing = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "explain", trained["campaign"],
                              "--data-dir", str(console_server.data_dir)], capture_output=True, text=True,
                             timeout=120, check=False)
    assert missing.returncode == 2 and "--user-id" in missing.stderr


def test_a_csv_uploaded_from_the_browser_is_imported_with_its_counts(console_server: LocalServer,
                                                                     tmp_path: Path) -> None:
    srv = console_server
    personalize = srv.client("personalize")
    group = _group(srv, "console-upload")
    schema = personalize.create_schema(name="console-upload-schema", schema=schema_json(INTERACTIONS_SCHEMA))
    dataset = personalize.create_dataset(name="uploaded", datasetGroupArn=group, datasetType="Interactions",
                                         schemaArn=schema["schemaArn"])["datasetArn"]
    wait_status(lambda: personalize.describe_dataset(datasetArn=dataset), "dataset")
    paths = write_dataset(tmp_path, users=10, items=8, per_user=5)
    body = paths["interactions"].read_bytes()
    client = sign_in(srv, srv.access_key, srv.secret_key)
    page = client.get("/console/group", params={"arn": group}).text
    assert 'id="upload-form"' in page
    token = re.search(r'data-csrf="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    url = "/console/upload?" + urlencode({"arn": dataset, "name": "my movies.csv"})

    assert client.post(url, content=body).status_code == 403  # no CSRF header
    assert client.post(url, content=b"", headers={"X-CSRF-Token": token}).status_code == 400
    key, secret = create_key(srv.data_dir, "console-upload-reader", READ_ONLY)
    reader = sign_in(srv, key, secret)
    reader_token = csrf(reader.get("/console/groups").text)
    uploads = srv.data_dir / "imports" / "console"
    stored = set(uploads.iterdir()) if uploads.exists() else set()  # the browser test's upload, if it ran
    denied = reader.post(url, content=body, headers={"X-CSRF-Token": reader_token})
    assert denied.status_code == 403 and "may not create import jobs" in denied.json()["message"]
    assert (set(uploads.iterdir()) if uploads.exists() else set()) == stored  # nothing stored for a refusal

    made = client.post(url, content=body, headers={"X-CSRF-Token": token})
    assert made.status_code == 200, made.text
    assert made.json()["bytes"] == len(body)
    job = made.json()["datasetImportJobArn"]
    done = wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob")
    assert done["status"] == "ACTIVE" and done["dataSource"]["dataLocation"].endswith("my_movies.csv")
    page = client.get("/console/group", params={"arn": group}).text
    assert "50 imported" in page and "rows/s" in page  # 10 users x 5 events


def test_a_filter_is_previewed_for_a_user_before_it_is_created(console_server: LocalServer,
                                                               trained: dict[str, Any]) -> None:
    srv, group = console_server, trained["group"]
    client = sign_in(srv, srv.access_key, srv.secret_key)
    page = client.get("/console/group", params={"arn": group}).text
    assert 'id="preview-button"' in page and trained["campaign"] in page
    form = {"csrf": csrf(page), "action": "filter", "name": "", "previewUser": "u1",
            "previewTarget": trained["campaign"]}
    genre = GENRES[1]
    shown = client.post("/console/filter/preview", params={"arn": group}, data={
        **form, "filterExpression": f'EXCLUDE ItemID WHERE Items.GENRES IN ("{genre}")'})
    assert shown.status_code == 200, shown.text
    rows = re.findall(r'<tr class="(kept|removed)"><td>\d+</td><td class="item">i(\d+)</td>', shown.text)
    assert len(rows) == 25  # the user's unfiltered recommendations, each marked
    for verdict, item in rows:  # items i<n> have genre GENRES[n % 6] (tests/e2e/datagen.py)
        assert (verdict == "removed") == (GENRES[int(item) % len(GENRES)] == genre), (verdict, item)
    removed = sum(1 for verdict, _ in rows if verdict == "removed")
    assert removed and f"{removed} of 25 recommendations" in shown.text

    typo = client.post("/console/filter/preview", params={"arn": group}, data={
        **form, "filterExpression": 'EXCLUDE ItemID WHERE Items.GENRES IN ("Drama"'})
    assert typo.status_code == 400 and "position" in typo.text and 'id="preview-error"' in typo.text
    assert srv.client("personalize").list_filters(datasetGroupArn=group)["Filters"] == []  # nothing created


def test_batch_jobs_and_metric_attribution_from_the_console(console_server: LocalServer, console_import_root: Path,
                                                            trained: dict[str, Any]) -> None:
    srv, group = console_server, trained["group"]
    folder = console_import_root / "batch"
    folder.mkdir(exist_ok=True)
    (folder / "users.json").write_text("".join(json.dumps({"userId": f"u{n}"}) + "\n" for n in range(4)))
    client = sign_in(srv, srv.access_key, srv.secret_key)
    page = client.get("/console/jobs", params={"arn": group})
    assert page.status_code == 200 and 'id="no-batch"' in page.text and 'id="no-attribution"' in page.text
    form = {"csrf": csrf(page.text), "action": "inference", "jobName": "console-batch",
            "solutionVersionArn": trained["version"], "inputPath": str(folder / "users.json"),
            "outputPath": "/nowhere/allowed/", "numResults": "3"}
    refused = client.post("/console/jobs", params={"arn": group}, data=form)
    assert refused.status_code == 400 and 'id="error-inference"' in refused.text
    assert 'value="/nowhere/allowed/"' in refused.text  # what was typed stays in the form
    made = client.post("/console/jobs", params={"arn": group}, data={**form, "outputPath": str(folder / "out")})
    assert made.status_code == 303, made.text
    personalize = srv.client("personalize")
    job = personalize.list_batch_inference_jobs(solutionVersionArn=trained["version"])["batchInferenceJobs"][0]
    done = wait_status(lambda: personalize.describe_batch_inference_job(
        batchInferenceJobArn=job["batchInferenceJobArn"]), "batchInferenceJob", timeout=180)
    assert done["status"] == "ACTIVE", done.get("failureReason")
    shown = client.get("/console/jobs", params={"arn": group}).text
    assert "console-batch" in shown and "4 lines answered" in shown and "users.json.out" in shown
    assert "&#34;userId&#34;: &#34;u0&#34;" in shown or "&#34;u0&#34;" in shown  # the first results

    created = client.post("/console/jobs", params={"arn": group}, data={
        "csrf": form["csrf"], "action": "attribution", "name": "console-clicks", "eventType": "click",
        "metricName": "CLICKS", "expression": "SUM(Items.NOPE)"})
    assert created.status_code == 400 and 'id="error-attribution"' in created.text and "NOPE" in created.text
    created = client.post("/console/jobs", params={"arn": group}, data={
        "csrf": form["csrf"], "action": "attribution", "name": "console-clicks", "eventType": "click",
        "metricName": "CLICKS", "expression": "SAMPLECOUNT()"})
    assert created.status_code == 303, created.text
    shown = client.get("/console/jobs", params={"arn": group}).text
    assert "console-clicks" in shown and "CLICKS" in shown and "SAMPLECOUNT()" in shown
    attribution = personalize.list_metric_attributions(datasetGroupArn=group)["metricAttributions"][0]
    wait_status(lambda: personalize.describe_metric_attribution(
        metricAttributionArn=attribution["metricAttributionArn"]), "metricAttribution")
    assert 'id="no-attributed"' in client.get("/console/jobs", params={"arn": group}).text
    personalize.delete_metric_attribution(metricAttributionArn=attribution["metricAttributionArn"])


def test_evaluation_evidence_per_held_out_user(console_server: LocalServer, trained: dict[str, Any]) -> None:
    srv = console_server
    report = json.loads(subprocess.run(
        [sys.executable, "-m", "tastemaker.cli.main", "evaluation", "--solution-version", trained["version"],
         "--data-dir", str(srv.data_dir)], capture_output=True, text=True, timeout=120, check=True).stdout)
    client = sign_in(srv, srv.access_key, srv.secret_key)
    group_page = client.get("/console/group", params={"arn": trained["group"]}).text
    assert 'class="evidence-link"' in group_page
    page = client.get("/console/evaluation", params={"arn": trained["version"]}).text
    shown = re.findall(r"<h2>User (\S+) ", page)
    assert shown == [q["user_id"] for q in report["queries"][:20]]
    query = report["queries"][0]
    one = client.get("/console/evaluation", params={"arn": trained["version"], "user": query["user_id"]}).text
    assert re.findall(r"<h2>User (\S+) ", one) == [query["user_id"]]
    marked = re.findall(r"<mark>([^<]+)</mark>", one.split("<b>Recommended</b>")[1])
    assert marked == [item for item in query["recommended"] if item in set(query["truth"])]
    assert f"{sum(1 for i in query['recommended'][:10] if i in set(query['truth']))} of {len(query['truth'])}" in one
    missing = client.get("/console/evaluation", params={"arn": trained["version"], "user": "nobody"})
    assert missing.status_code == 404 and "was not among the held-out users" in missing.text


def test_the_test_panel_promotes_a_filters_items_and_says_which_slot(console_server: LocalServer,
                                                                     trained: dict[str, Any]) -> None:
    srv = console_server
    personalize = srv.client("personalize")
    horror = personalize.create_filter(name="console-horror", datasetGroupArn=trained["group"],
                                       filterExpression='INCLUDE ItemID WHERE Items.GENRES IN ("Horror")')["filterArn"]
    wait_status(lambda: personalize.describe_filter(filterArn=horror), "filter")
    client = sign_in(srv, srv.access_key, srv.secret_key)
    url = "/console/campaign?arn=" + trained["campaign"]
    token = csrf(client.get(url).text)
    bad = client.post(url, data={"csrf": token, "userId": "u2", "context": "[1, 2]"})
    assert bad.status_code == 400 and "Context must be a JSON object" in bad.text
    page = client.post(url, data={"csrf": token, "userId": "u2", "numResults": "5", "promotionFilterArn": horror,
                                  "promotionPercent": "40", "promotionName": "spooky"})
    assert page.status_code == 200, page.text
    rows = re.findall(r'<td class="item">(i\d+)</td>.*?<span class="slot">([^<]+)</span>', page.text, re.DOTALL)
    promoted = [item for item, slot in rows if slot == "promotion spooky"]
    assert len(rows) == 5 and len(promoted) == 2, rows
    assert all(GENRES[int(item[1:]) % len(GENRES)] == "Horror" for item in promoted)
    personalize.delete_filter(filterArn=horror)
