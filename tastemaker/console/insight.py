"""What the console shows about how things run: monitoring charts, the audit trail and evaluation evidence.

- Monitoring: for each campaign, recommender and event tracker of a group, the last hour of its CloudWatch
  metrics (spec 9.2's names: requests, 4xx, 5xx, latency) from GetMetricData for the key, one datapoint per
  minute, as bar charts (console.charts: Plotly figures built here, drawn by plotly.js). The figures are per
  process, as the CloudWatch read API's are.
- Audit trail: CloudTrail's LookupEvents for the key, newest first, one lookup attribute, a page at a time.
- Evaluation evidence: the version's evaluation.json (what `tastemaker evaluation` prints) per held-out
  user, after DescribeSolutionVersion has shown the key may read the version; parsed reports are kept for the
  newest few versions.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tastemaker.api.app import Api
from tastemaker.console.calls import Caller
from tastemaker.console.charts import bar_chart
from tastemaker.console.pages import PAGE, Ctx, list_all, when
from tastemaker.errors import TastemakerError
from tastemaker.store.records import SolutionVersion, load

WINDOW_SECONDS = 3600  # the monitoring charts' window (a datapoint per minute)
# (metric name with * for the operation, statistic, unit) per chart; spec 9.2's names.
RUNTIME_METRICS = (("*", "Sum", "calls"), ("*4xxErrors", "Sum", "calls"), ("*5xxErrors", "Sum", "calls"),
                   ("*Latency", "Average", "ms"))
EVENT_METRICS = (("PutEventsRequests", "Sum", "calls"), ("PutEvents4xxErrors", "Sum", "calls"),
                 ("PutEvents5xxErrors", "Sum", "calls"), ("PutEventLatency", "Average", "ms"))
AUDIT_KEYS = ("EventName", "Username", "AccessKeyId", "ResourceName", "ResourceType", "ReadOnly", "EventId")
EVALUATIONS_KEPT = 4  # parsed evaluation reports kept per process


async def monitoring(request: Request, ctx: Ctx) -> Response:
    """The last hour's request, error, latency and event charts of a group's campaigns, recommenders and
    event trackers: CloudWatch's GetMetricData (namespace AWS/Personalize), one datapoint per minute."""
    arn = request.query_params.get("arn", "")
    call = ctx.caller.call
    try:
        group = (await call("DescribeDatasetGroup", {"datasetGroupArn": arn}))["datasetGroup"]
    except TastemakerError as exc:
        return ctx.render("error.html", status=404, error=exc.message)
    targets: list[tuple[str, str, str, tuple[tuple[str, str, str], ...]]] = []  # kind, name, arn, metrics
    for solution in await list_all(call, "ListSolutions", "solutions", {"datasetGroupArn": arn}):
        for campaign in await list_all(call, "ListCampaigns", "campaigns", {"solutionArn": solution["solutionArn"]}):
            targets.append(("Campaign", campaign["name"], campaign["campaignArn"], RUNTIME_METRICS))
    for recommender in await list_all(call, "ListRecommenders", "recommenders", {"datasetGroupArn": arn}):
        targets.append(("Recommender", recommender["name"], recommender["recommenderArn"], RUNTIME_METRICS))
    for tracker in await list_all(call, "ListEventTrackers", "eventTrackers", {"datasetGroupArn": arn}):
        targets.append(("Event tracker", tracker["name"], tracker["eventTrackerArn"], EVENT_METRICS))
    panels, error = [], None
    for kind, name, target, metrics in targets:
        try:
            charts = await charts_for(ctx.caller, kind, target, metrics)
        except TastemakerError as exc:  # e.g. a key without cloudwatch:GetMetricData
            error = exc.message
            break
        panels.append({"kind": kind, "name": name, "arn": target, "charts": charts})
    return ctx.render("monitoring.html", status=403 if error else 200, group=group, panels=panels,
                      error=error)

async def audit(request: Request, ctx: Ctx) -> Response:
    """The audit trail, newest first, searchable by one CloudTrail lookup attribute (LookupEvents)."""
    query = request.query_params
    key, value = query.get("key", "EventName"), query.get("value", "").strip()
    params: dict[str, Any] = {"MaxResults": PAGE, "NextToken": query.get("next")}
    if value:
        params["LookupAttributes"] = [{"AttributeKey": key, "AttributeValue": value}]
    rows, error, following = [], None, None
    try:
        page = await ctx.caller.call("LookupEvents", params)
    except TastemakerError as exc:
        error = exc.message
    else:
        following = page.get("NextToken")
        for event in page.get("Events", []):
            record = json.loads(event.get("CloudTrailEvent") or "{}")
            rows.append({"time": when(event.get("EventTime")), "name": event.get("EventName"),
                         "user": event.get("Username") or "-", "key": record.get("userIdentity", {}).get(
                             "accessKeyId") or "-", "outcome": record.get("errorCode") or "ok",
                         "message": record.get("errorMessage") or "", "ip": record.get("sourceIPAddress") or "-",
                         "agent": record.get("userAgent") or "-",
                         "resources": [r.get("ResourceName") for r in event.get("Resources", [])]})
    next_link = "?" + urlencode({"key": key, "value": value, "next": following}) if following else None
    return ctx.render("audit.html", status=400 if error else 200, rows=rows, error=error, key=key,
                      value=value, keys=AUDIT_KEYS, next_link=next_link)


async def evaluation(request: Request, ctx: Ctx) -> Response:
    """The evidence behind a version's metrics, per held-out user (`tastemaker evaluation`): the events the
    model was given, the held-out truth, and the top 25 it recommended, hits marked; a page of users at a
    time, or one user by id."""
    arn = request.query_params.get("arn", "")
    wanted = request.query_params.get("user", "").strip()
    try:
        start = max(0, int(request.query_params.get("start", "0")))
    except ValueError:
        start = 0
    try:
        version = (await ctx.caller.call("DescribeSolutionVersion", {"solutionVersionArn": arn}))[
            "solutionVersion"]
        solution = (await ctx.caller.call("DescribeSolution", {"solutionArn": version["solutionArn"]}))[
            "solution"]
    except TastemakerError as exc:
        return ctx.render("error.html", status=404, error=exc.message)
    group = solution.get("datasetGroupArn") or ""
    report = await run_in_threadpool(ctx.console.evaluations.get, arn)
    if report is None:
        return ctx.render("evaluation.html", version=version, report=None, rows=[], wanted=wanted, start=0,
                          total=0, group=group, page=PAGE)
    queries = report.get("queries", [])
    chosen = [q for q in queries if q["user_id"] == wanted] if wanted else queries[start:start + PAGE]
    rows = []
    for query in chosen:
        truth = set(query.get("truth", []))
        recommended = query.get("recommended", [])
        rows.append({**query, "hits": [(item, item in truth) for item in recommended],
                     "hits10": sum(1 for item in recommended[:10] if item in truth)})
    return ctx.render("evaluation.html", status=404 if wanted and not rows else 200, version=version,
                      report=report, rows=rows, wanted=wanted, start=start, total=len(queries), group=group,
                      page=PAGE)


class EvaluationReports:
    """Parsed evaluation.json reports of the newest few solution versions read (a few MB each at most)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.reports: dict[str, dict[str, Any]] = {}

    def get(self, arn: str) -> dict[str, Any] | None:
        """The version's evaluation.json (parsed once per version: a few MB at most; the newest few kept)."""
        cached = self.reports.get(arn)
        if cached is None:
            services = self.api.services
            with services.read_engine.connect() as conn:
                prefix = load(conn, arn, SolutionVersion).model_prefix
            if not prefix or not services.blobs.exists(prefix + "evaluation.json"):
                return None
            cached = json.loads(services.blobs.get_bytes(prefix + "evaluation.json"))
            while len(self.reports) >= EVALUATIONS_KEPT:
                self.reports.pop(next(iter(self.reports)))
            self.reports[arn] = cached
        return cached


async def charts_for(caller: Caller, kind: str, target: str,
                  metrics: tuple[tuple[str, str, str], ...]) -> list[Any]:
    """The last hour of a campaign's, recommender's or event tracker's metrics as bar charts (GetMetricData
    for the key, one datapoint per minute)."""
    end = float(int(time.time()) // 60 * 60 + 60)
    start = end - WINDOW_SECONDS
    dimension = {"Campaign": "CampaignArn", "Recommender": "RecommenderArn"}.get(kind, "EventTrackerArn")
    queries = [{"Id": f"m{n}", "MetricStat": {"Metric": {
        "Namespace": "AWS/Personalize", "MetricName": metric.replace("*", _op(kind)),
        "Dimensions": [{"Name": dimension, "Value": target}]}, "Period": 60, "Stat": stat}}
        for n, (metric, stat, _) in enumerate(metrics)]
    data = await caller.call("GetMetricData", {"MetricDataQueries": queries, "StartTime": start, "EndTime": end})
    by_id = {r["Id"]: r for r in data.get("MetricDataResults", [])}
    return [bar_chart(metric.replace("*", _op(kind)), by_id.get(f"m{n}", {}).get("Timestamps", []),
                      by_id.get(f"m{n}", {}).get("Values", []), start=start, end=end, period=60, unit=unit)
            for n, (metric, _, unit) in enumerate(metrics)]


def _op(kind: str) -> str:
    return "GetRecommendations" if kind in ("Campaign", "Recommender") else "PutEvents"
