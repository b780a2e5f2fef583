"""The console's jobs page against a live server: item metadata in the test panel, dataset exports and data
deletions created from the page (CSRF, read-only keys, errors at the form), and a metric attribution's figures
charted per metric and source."""

from __future__ import annotations

import csv
import html
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tastemaker.cli.local_server import LocalServer
from tastemaker.console.charts import figures_in
from tests.console.test_sessions import READ_ONLY, csrf, sign_in
from tests.e2e.datagen import GENRES
from tests.e2e.test_access_keys import create_key
from tests.e2e.util import wait_status

pytestmark = pytest.mark.slow


def _cells(row: str) -> dict[str, str]:
    return dict(re.findall(r'<td class="meta" data-column="([^"]+)">([^<]*)</td>', row))


def test_the_test_panel_shows_item_metadata_beside_results_and_history(console_server: LocalServer,
                                                                       trained: dict[str, Any]) -> None:
    client = sign_in(console_server, console_server.access_key, console_server.secret_key)
    url = "/console/campaign?arn=" + trained["campaign"]
    page = client.post(url, data={"csrf": csrf(client.get(url).text), "userId": "u7", "numResults": "5"}).text
    results = page[page.index('id="results"'):page.index("</table>", page.index('id="results"'))]
    assert re.findall(r"<th>([A-Z_]+)</th>", results) == ["GENRES", "PRICE", "DESCRIPTION"]  # no ids, no times
    rows = re.findall(r'<td class="item">(i\d+)</td>(.*?)</tr>', results, re.DOTALL)
    assert len(rows) == 5
    for item, row in rows:  # each value is the item's own (tests/e2e/datagen's items.csv)
        n = int(item[1:])
        genre = GENRES[n % len(GENRES)]
        assert _cells(row) == {"GENRES": genre, "PRICE": f"{5 + n % 20}.5",
                               "DESCRIPTION": f"A {genre.lower()} story number {n}"}, row
    history = page[page.index('id="history"'):]
    seen = re.findall(r'<td class="item">(i\d+)</td>(.*?)</tr>', history, re.DOTALL)
    with trained["paths"]["interactions"].open() as fh:
        mine = {r["ITEM_ID"] for r in csv.DictReader(fh) if r["USER_ID"] == "u7"}
    assert seen and {item for item, _ in seen} <= mine
    assert all(_cells(row)["GENRES"] == GENRES[int(item[1:]) % len(GENRES)] for item, row in seen)


def test_a_dataset_export_from_the_console(console_server: LocalServer, console_import_root: Path,
                                           trained: dict[str, Any]) -> None:
    srv, group = console_server, trained["group"]
    client = sign_in(srv, srv.access_key, srv.secret_key)
    group_page = client.get("/console/group", params={"arn": group}).text  # each dataset links to its export form
    links = [html.unescape(link) for link in re.findall(r'href="([^"]+)" class="export-link"', group_page)]
    assert len(links) == 2 and 'class="deletion-link"' in group_page
    page = client.get(links[0]).text
    chosen = parse_qs(urlsplit(links[0]).query)["export"][0]
    assert re.search(r'<details open><summary id="export-summary">', page)
    assert re.findall(r'<option value="([^"]+)" selected>', page[page.index('id="export-dataset"'):])[:1] == [chosen]
    assert 'id="create-export"' in page and 'id="no-exports"' in page
    form = {"csrf": csrf(page), "action": "export", "jobName": "console-export",
            "datasetArn": trained["datasets"]["Interactions"], "ingestionMode": "BULK",
            "outputPath": "/nowhere/allowed/"}
    assert client.post("/console/jobs", params={"arn": group}, data={**form, "csrf": "stale"}).status_code == 403
    refused = client.post("/console/jobs", params={"arn": group}, data=form)
    assert refused.status_code == 400 and 'id="error-export"' in refused.text
    assert 'value="/nowhere/allowed/"' in refused.text  # what was typed stays in the form
    folder = console_import_root / "exports"
    made = client.post("/console/jobs", params={"arn": group}, data={**form, "outputPath": f"{folder}/"})
    assert made.status_code == 303, made.text
    personalize = srv.client("personalize")
    job = personalize.list_dataset_export_jobs(datasetArn=trained["datasets"]["Interactions"])["datasetExportJobs"][0]
    done = wait_status(lambda: personalize.describe_dataset_export_job(
        datasetExportJobArn=job["datasetExportJobArn"]), "datasetExportJob", timeout=120)
    assert done["status"] == "ACTIVE", done.get("failureReason")
    with (folder / "console-export" / "part-00000.csv").open() as fh:
        written = sum(1 for _ in csv.DictReader(fh))
    with trained["paths"]["interactions"].open() as fh:
        assert written == sum(1 for _ in csv.DictReader(fh))  # BULK: the imported rows, no streamed events
    shown = client.get("/console/jobs", params={"arn": group}).text
    exports = shown[shown.index('id="export-jobs"'):shown.index('id="deletions"')]
    assert "console-export" in exports and f"{written:,} rows written" in exports and "part-00000.csv" in exports
    assert '"USER_ID","ITEM_ID","TIMESTAMP","EVENT_TYPE","EVENT_VALUE"\n"u0",' in html.unescape(exports)  # first lines


def test_attributed_figures_are_charted_per_metric_and_source(console_server: LocalServer,
                                                              attributed: dict[str, Any]) -> None:
    client = sign_in(console_server, console_server.access_key, console_server.secret_key)
    deadline = time.monotonic() + 60
    while True:  # the job runner's maintenance pass aggregates the events every few seconds
        page = client.get("/console/jobs", params={"arn": attributed["group"]}).text
        if "CLICKS · all sources · total 10" in page or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    table = page[page.index('id="attributed"'):page.index("</table>", page.index('id="attributed"'))]
    rows = re.findall(r"<tr><td>CLICKS</td><td>click</td><td class=\"arn\">(\w+)</td><td>[\d.,]+</td><td>(\d+)</td>",
                      table)
    assert sorted(rows) == [("homepage", "2"), ("newsletter", "8")]
    shown = page[page.index("attributed-charts"):]
    charts = figures_in(shown)
    assert len(charts) == 3, page  # all sources, then each source, largest first
    bars = bars_day = [c["data"][0] for c in charts]
    assert [b["name"] for b in bars] == ["CLICKS · all sources", "CLICKS · newsletter", "CLICKS · homepage"]
    assert [sorted(b["y"]) for b in bars] == [[5.0, 5.0], [3.0, 5.0], [2.0]]  # an hour ago and now, per window
    windows = [datetime.strptime(x, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() for x in bars[0]["x"]]
    assert windows[1] - windows[0] == 3600 and bars[0]["width"] == 900 * 1000 * 0.9  # 15-minute windows
    assert [t.rsplit(": ", 1)[1] for t in bars[1]["text"]] == ["5", "3"]  # hover: the window and its figure
    assert re.findall(r"<figcaption>(.*?)</figcaption>", shown)[:3] == [
        "CLICKS · all sources · total 10 · peak 5", "CLICKS · newsletter · total 8 · peak 5",
        "CLICKS · homepage · total 2 · peak 2"]
    assert 'aria-current="true" class="span-current">last day</b>' in page and "per 15 minutes, last day" in page

    def charted(span: str, shown_as: str) -> list[dict[str, Any]]:
        shown = client.get("/console/jobs", params={"arn": attributed["group"], "span": span}).text
        assert f'aria-current="true" class="span-current">{shown_as}</b>' in shown
        return figures_in(shown[shown.index("attributed-charts"):])

    def days(figure: dict[str, Any]) -> float:
        low, high = (datetime.strptime(x, "%Y-%m-%d %H:%M:%S") for x in figure["layout"]["xaxis"]["range"])
        return (high - low).total_seconds() / 86_400

    hour = charted("hour", "last hour")  # the newest four windows: only the events sent now
    assert [(f["data"][0]["name"], f["data"][0]["y"]) for f in hour] == [
        ("CLICKS · all sources", [5.0]), ("CLICKS · newsletter", [3.0]), ("CLICKS · homepage", [2.0])]
    assert days(hour[0]) == 1 / 24
    for span, label, length, hours in (("week", "last 7 days", 7, 2), ("month", "last 30 days", 30, 12)):
        figures = charted(span, label)  # longer spans: wider bars, the same events in them
        bars = [f["data"][0] for f in figures]
        assert [sum(b["y"]) for b in bars] == [10.0, 8.0, 2.0], (span, bars)
        assert all(b["width"] == hours * 3600 * 1000 * 0.9 for b in bars) and len(bars[0]["y"]) <= 2
        assert days(figures[0]) == length
    fallback = charted("fortnight", "last day")  # an unknown span: the default
    assert [f["data"][0]["y"] for f in fallback] == [b["y"] for b in bars_day]


def test_data_deletion_from_the_console_with_typed_user_ids(console_server: LocalServer,
                                                            attributed: dict[str, Any]) -> None:
    srv, group = console_server, attributed["group"]
    deletions = srv.data_dir / "imports" / "console" / "deletions"
    key, secret = create_key(srv.data_dir, "console-jobs-reader", READ_ONLY)
    reader = sign_in(srv, key, secret)
    seen = reader.get("/console/jobs", params={"arn": group}).text
    assert 'id="create-deletion"' not in seen and 'id="create-export"' not in seen  # no change forms
    denied = reader.post("/console/jobs", params={"arn": group}, data={
        "csrf": csrf(seen), "action": "deletion", "jobName": "not-allowed", "userIds": "u0"})
    assert denied.status_code == 400 and 'id="error-deletion"' in denied.text
    assert "is not authorized to perform: personalize:CreateDataDeletionJob" in denied.text
    assert not deletions.exists() or not list(deletions.iterdir())  # refused before anything was written

    client = sign_in(srv, srv.access_key, srv.secret_key)
    form = {"csrf": csrf(client.get("/console/jobs", params={"arn": group}).text), "action": "deletion",
            "jobName": "console-forget-u0"}
    empty = client.post("/console/jobs", params={"arn": group}, data=form)
    assert empty.status_code == 400 and "Give the users to delete" in empty.text
    made = client.post("/console/jobs", params={"arn": group}, data={**form, "userIds": "u0\n"})
    assert made.status_code == 303, made.text
    personalize = srv.client("personalize")
    job = personalize.list_data_deletion_jobs(datasetGroupArn=group)["dataDeletionJobs"][0]
    done = wait_status(lambda: personalize.describe_data_deletion_job(
        dataDeletionJobArn=job["dataDeletionJobArn"]), "dataDeletionJob", until={"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED" and done["numDeleted"] == 4, done  # u0's 4 streamed events
    shown = client.get("/console/jobs", params={"arn": group}).text
    rows = shown[shown.index('id="deletion-jobs"'):]
    assert "console-forget-u0" in rows and "4 records deleted" in rows and "deletions/" in rows
