"""Server time of the console's pages on ml-1m-partial: CPU milliseconds the server process spends per page.

Sets up a server (one process, SQLite) with the dataset imported (interactions, items, users), a trained
aws-user-personalization version deployed as a campaign, a popularity baseline, an event tracker with a few
events, a filter, a finished batch inference job, a finished dataset export (Items), a finished data deletion
and a metric attribution with attributed events from 5 sources (so the jobs page has its charts); then requests each page `--repeat` times through httpx
and reports, per page, the server process's CPU time per request (utime+stime from /proc, so a loaded machine
inflates it far less than wall time) and the client-side wall time, both as medians over `--rounds` rounds,
beside the server's idle CPU over the same wall time (the background threads' share) and the `/ping` CPU
per request (the floor of any request); plotly.js, which the chart pages load (once: it is cached for a year),
is measured as a page too. Last, in this process on the same data, the attribution figures the
jobs page used to compute per load (jobs.impact.report, which first runs the aggregator) beside what it reads now
(console.attribution.figures: stored totals and recent windows), as process CPU medians over interleaved rounds.

    .venv/bin/python bench/console_pages.py [../shared/data/movielens-1m-partial/personalize] [--repeat 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tastemaker.cli.local_server import LocalServer

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait(describe: Any, key: str, timeout: float = 1800) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found: dict[str, Any] = describe()[key]
        if found["status"] in ("ACTIVE", "CREATE FAILED"):
            if found["status"] != "ACTIVE":
                raise SystemExit(f"{key} failed: {found.get('failureReason')}")
            return found
        time.sleep(1)
    raise SystemExit(f"{key} still not ACTIVE")


def setup(srv: LocalServer, data: Path, work: Path) -> dict[str, str]:
    p = srv.client("personalize")
    group = p.create_dataset_group(name="bench-console")["datasetGroupArn"]
    wait(lambda: p.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    files = {"Interactions": "interactions.csv.gz", "Items": "items.csv", "Users": "users.csv"}
    datasets = {}
    for kind, name in files.items():
        shape = json.loads((data / f"{kind.lower()}.schema.json").read_text())
        if kind == "Interactions":  # streamed events may carry an attribution source (the jobs page's charts)
            shape["fields"].append({"name": "EVENT_ATTRIBUTION_SOURCE", "type": ["null", "string"]})
        schema = p.create_schema(name=f"bench-{kind}", schema=json.dumps(shape))["schemaArn"]
        datasets[kind] = p.create_dataset(name=f"bench-{kind}", datasetGroupArn=group, datasetType=kind,
                                          schemaArn=schema)["datasetArn"]
        job = p.create_dataset_import_job(jobName=f"bench-{kind}", datasetArn=datasets[kind],
                                          roleArn="arn:aws:iam::000000000000:role/x",
                                          dataSource={"dataLocation": str(data / name)})["datasetImportJobArn"]
        wait(lambda job=job: p.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob")
    versions = {}
    for recipe in ("aws-user-personalization", "aws-popularity-count"):
        solution = p.create_solution(name=f"bench-{recipe}", datasetGroupArn=group,
                                     recipeArn=f"arn:aws:personalize:::recipe/{recipe}")["solutionArn"]
        wait(lambda s=solution: p.describe_solution(solutionArn=s), "solution")
        version = p.create_solution_version(solutionArn=solution)["solutionVersionArn"]
        versions[recipe] = version
    for version in versions.values():
        wait(lambda v=version: p.describe_solution_version(solutionVersionArn=v), "solutionVersion")
    campaign = p.create_campaign(name="bench-campaign",
                                 solutionVersionArn=versions["aws-user-personalization"])["campaignArn"]
    wait(lambda: p.describe_campaign(campaignArn=campaign), "campaign")
    tracker = p.create_event_tracker(name="bench-tracker", datasetGroupArn=group)
    wait(lambda: p.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]), "eventTracker")
    events = srv.client("personalize-events")
    for n in range(20):
        events.put_events(trackingId=tracker["trackingId"], userId="1", sessionId="bench",
                          eventList=[{"eventType": "rating", "itemId": str(n + 1), "eventValue": 4.0,
                                      "sentAt": time.time()}])
    filt = p.create_filter(name="bench-drama", datasetGroupArn=group,
                           filterExpression='EXCLUDE ItemID WHERE Items.GENRES IN ("Drama")')["filterArn"]
    wait(lambda: p.describe_filter(filterArn=filt), "filter")
    batch_in = work / "batch" / "users.json"
    batch_in.parent.mkdir(parents=True, exist_ok=True)
    batch_in.write_text("".join(json.dumps({"userId": str(u)}) + "\n" for u in range(1, 201)))
    job = p.create_batch_inference_job(
        jobName="bench-batch", solutionVersionArn=versions["aws-user-personalization"],
        jobInput={"s3DataSource": {"path": str(batch_in)}},
        jobOutput={"s3DataDestination": {"path": str(work / "batch" / "out") + "/"}},
        roleArn="arn:aws:iam::000000000000:role/x")["batchInferenceJobArn"]
    wait(lambda: p.describe_batch_inference_job(batchInferenceJobArn=job), "batchInferenceJob")
    export = p.create_dataset_export_job(
        jobName="bench-export", datasetArn=datasets["Items"], ingestionMode="BULK",
        roleArn="arn:aws:iam::000000000000:role/x",
        jobOutput={"s3DataDestination": {"path": str(work / "exports") + "/"}})["datasetExportJobArn"]
    wait(lambda: p.describe_dataset_export_job(datasetExportJobArn=export), "datasetExportJob")
    nobody = work / "delete-users.csv"
    nobody.write_text("USER_ID\nno-such-user\n")
    deletion = p.create_data_deletion_job(jobName="bench-deletion", datasetGroupArn=group,
                                          dataSource={"dataLocation": str(nobody)},
                                          roleArn="arn:aws:iam::000000000000:role/x")["dataDeletionJobArn"]
    deadline = time.time() + 600
    while p.describe_data_deletion_job(dataDeletionJobArn=deletion)["dataDeletionJob"]["status"] != "COMPLETED":
        if time.time() > deadline:
            raise SystemExit("the data deletion did not complete")
        time.sleep(1)
    attribution = p.create_metric_attribution(
        name="bench-attribution", datasetGroupArn=group,
        metricsOutputConfig={"roleArn": "arn:aws:iam::000000000000:role/x"},
        metrics=[{"eventType": "rating", "metricName": "RATINGS", "expression": "SAMPLECOUNT()"}])
    wait(lambda: p.describe_metric_attribution(metricAttributionArn=attribution["metricAttributionArn"]),
         "metricAttribution")
    for n in range(40):  # attributed events from 5 sources: the jobs page charts all sources and the 4 largest
        events.put_events(trackingId=tracker["trackingId"], userId=str(n % 7 + 1), sessionId="bench-attributed",
                          eventList=[{"eventType": "rating", "itemId": str(n + 1), "eventValue": 4.0,
                                      "sentAt": time.time(), "metricAttribution": {
                                          "eventAttributionSource": f"source-{n % 5}"}}])
    return {"group": group, "campaign": campaign, "tracker": tracker["eventTrackerArn"],
            "version": versions["aws-user-personalization"], "filter": filt,
            "attribution": attribution["metricAttributionArn"]}


def attribution_reads(srv: LocalServer, arn: str, rounds: int, repeat: int) -> tuple[float, float]:
    """(ms of process CPU per call of jobs.impact.report + arm_report, of console.attribution.figures): medians
    over interleaved rounds, in this process on the server's data."""
    from types import SimpleNamespace

    from tastemaker.cli.wiring import build_services
    from tastemaker.config import Settings
    from tastemaker.console.attribution import figures
    from tastemaker.jobs import impact

    services = build_services(Settings.from_env(data_dir=srv.data_dir), migrate=False, serves_requests=False)
    api: Any = SimpleNamespace(services=services)
    old, new = [], []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(repeat):
            impact.arm_report(services, impact.report(services, arn))
        old.append((time.process_time() - started) * 1000 / repeat)
        started = time.process_time()
        for _ in range(repeat):
            figures(api, arn)
        new.append((time.process_time() - started) * 1000 / repeat)
    return statistics.median(old), statistics.median(new)


def measure(srv: LocalServer, client: httpx.Client, method: str, url: str, repeat: int,
            data: dict[str, str] | None = None) -> tuple[float, float]:
    """(server CPU ms per request, client wall ms per request) over `repeat` requests."""
    assert srv.process is not None
    pid = srv.process.pid
    before, started = cpu_seconds(pid), time.perf_counter()
    for _ in range(repeat):
        reply = client.request(method, url, data=data)
        if reply.status_code >= 400:
            raise SystemExit(f"{method} {url}: {reply.status_code} {reply.text[:500]}")
    wall = time.perf_counter() - started
    return (cpu_seconds(pid) - before) * 1000 / repeat, wall * 1000 / repeat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" /
                                                        "movielens-1m-partial" / "personalize"))
    parser.add_argument("--repeat", type=int, default=10, help="requests per page per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = Path(args.data).resolve()
    work = Path(tempfile.mkdtemp(prefix="bench-console-"))
    with LocalServer(work / "server", import_roots=[data, work]) as srv:
        started = time.time()
        arns = setup(srv, data, work)
        print(f"set up in {time.time() - started:.0f} s; load average {os.getloadavg()}", flush=True)
        client = httpx.Client(base_url=srv.url, timeout=120)
        reply = client.post("/console/signin", data={"access_key_id": srv.access_key,
                                                     "secret_access_key": srv.secret_key})
        assert reply.status_code in (200, 303), reply.text
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/groups").text).group(1)  # type: ignore[union-attr]
        g = arns["group"]
        plotly = metadata.version("plotly")  # plotly.js is served from the installed package (console.charts)
        pages: list[tuple[str, str, str, dict[str, str] | None]] = [
            ("group list", "GET", "/console/groups", None),
            ("group page", "GET", f"/console/group?arn={g}", None),
            ("campaign page", "GET", f"/console/campaign?arn={arns['campaign']}", None),
            ("test panel + why + item metadata (25)", "POST", f"/console/campaign?arn={arns['campaign']}",
             {"csrf": token, "userId": "1", "numResults": "25"}),
            ("filter preview (25 items)", "POST", f"/console/filter/preview?arn={g}",
             {"csrf": token, "filterExpression": 'EXCLUDE ItemID WHERE Items.GENRES IN ("Comedy")',
              "previewUser": "1", "previewTarget": arns["campaign"]}),
            ("tracker page", "GET", f"/console/tracker?arn={arns['tracker']}", None),
            ("monitoring", "GET", f"/console/monitoring?arn={g}", None),
            ("audit trail", "GET", "/console/audit", None),
            ("jobs: batch, export, deletion, attribution", "GET", f"/console/jobs?arn={g}", None),
            ("jobs, attribution charts over 30 days", "GET", f"/console/jobs?arn={g}&span=month", None),
            ("tracker live chart (redrawn every 5 s)", "GET", f"/console/tracker/live?arn={arns['tracker']}", None),
            ("evaluation evidence", "GET", f"/console/evaluation?arn={arns['version']}", None),
            ("delete preview", "GET", f"/console/group/delete?arn={g}", None),
            ("plotly.min.js (the charts' script, gzipped)", "GET", f"/console/static/plotly-{plotly}.min.js", None),
        ]
        deadline = time.time() + 120
        while "chart-figure" not in client.get(f"/console/jobs?arn={g}").text:  # the runner aggregates them
            if time.time() > deadline:
                raise SystemExit("the attributed events were not aggregated in 120 s")
            time.sleep(1)
        for name, method, url, form in pages:  # warm: first reads (recipes, models, reports) happen once
            charts = client.request(method, url, data=form).text.count('class="chart-figure"')
            if charts:
                print(f"{name}: {charts} charts", flush=True)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in pages}
        ping, idle = [], []
        assert srv.process is not None
        for _ in range(args.rounds):
            ping.append(measure(srv, client, "GET", "/ping", args.repeat * 5))
            before, t0 = cpu_seconds(srv.process.pid), time.perf_counter()
            time.sleep(1.0)
            idle.append((cpu_seconds(srv.process.pid) - before) * 1000 / (time.perf_counter() - t0))
            for name, method, url, form in pages:
                results[name].append(measure(srv, client, method, url, args.repeat, form))
        print(f"load average after: {os.getloadavg()}; server idle CPU {statistics.median(idle):.1f} ms per "
              f"wall second; /ping {statistics.median(c for c, _ in ping):.2f} ms CPU per request")
        print(f"{'page':44} {'server CPU ms':>14} {'client wall ms':>15}")
        for name, rows in results.items():
            print(f"{name:44} {statistics.median(c for c, _ in rows):14.1f} "
                  f"{statistics.median(w for _, w in rows):15.1f}")
        old, new = attribution_reads(srv, arns["attribution"], args.rounds, args.repeat)
        print(f"attribution figures per jobs page load (process CPU ms): aggregating first (impact.report) {old:.2f}, "
              f"stored totals and windows (console.attribution.figures) {new:.2f}; load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
