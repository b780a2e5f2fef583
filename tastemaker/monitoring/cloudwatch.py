"""The CloudWatch read API for namespace AWS/Personalize: ListMetrics, GetMetricStatistics, GetMetricData.

The figures are the series of every process that shares the metadata store: every API worker, job runner and
`tastemaker worker` of every replica, each publishing its per-minute statistic sets to the store
(tastemaker.monitoring.published; this process's own figures are read live), one statistic set per minute: a
metric's datapoint for a period sums the minutes inside it. Count metrics (`GetRecommendations`,
`...4xxErrors`, `DatasetImportJobRequests`, ...) are published as 1 per call, so Sum and SampleCount are the
number of calls; latency and execution-time metrics carry Minimum/Maximum/Average/Sum/SampleCount of the
successful calls. A period is a multiple of 60 seconds; datapoints start at multiples of the period.
Metric attribution's metrics (tastemaker.jobs.attribution) are read from the metadata store: one datapoint per
15-minute window, source and metric, kept 14 days.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from tastemaker.control.context import RequestContext
from tastemaker.control.registry import operation
from tastemaker.errors import TastemakerError
from tastemaker.monitoring import published
from tastemaker.monitoring.metrics import Series
from tastemaker.store import attribution

NAMESPACE = "AWS/Personalize"
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
PAGE = 500
ATTRIBUTION_DAYS = 14


class InvalidParameterValueException(TastemakerError):
    code = "InvalidParameterValueException"
    status = 400
    query_error = "InvalidParameterValue;Sender"  # the code query-protocol clients knew (x-amzn-query-error)


class InvalidParameterCombinationException(TastemakerError):
    code = "InvalidParameterCombinationException"
    status = 400
    query_error = "InvalidParameterCombination;Sender"


class InvalidNextToken(TastemakerError):
    code = "InvalidNextToken"
    status = 400
    query_error = "InvalidNextToken;Sender"


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric: a name and its dimensions, read from one column of one series' minutes."""

    name: str
    dimensions: tuple[tuple[str, str], ...]
    unit: str
    series: Series
    column: str  # "requests", "client", "server" or "latency"

    def datapoints(self, start: float, end: float, period: int) -> dict[int, list[float]]:
        """Period start -> [sample count, sum, minimum, maximum] over the minutes in [start, end)."""
        out: dict[int, list[float]] = {}
        for minute, w in self.series.snapshot().items():
            if not start <= minute < end:
                continue
            if self.column == "latency":
                n, total, low, high = w[3], w[4], w[5], w[6]
            else:
                n = w[{"requests": 0, "client": 1, "server": 2}[self.column]]
                total, low, high = n, 1.0, 1.0
            if not n:
                continue
            key = int(minute) // period * period
            point = out.get(key)
            if point is None:
                out[key] = [n, total, low, high]
            else:
                point[0] += n
                point[1] += total
                point[2] = min(point[2], low)
                point[3] = max(point[3], high)
        return out


def attributed(ctx: RequestContext) -> Iterator[Metric]:
    """Metric attribution's metrics: one datapoint per 15-minute window and source, its value the window's SUM
    (or SAMPLECOUNT), named as the attribution names them, with dimensions EventAttributionSource and
    MetricAttributionArn."""
    since = time.time() - ATTRIBUTION_DAYS * 86_400
    with ctx.read_engine.connect() as conn:
        found = attribution.windows_since(conn, since)
    by_metric: dict[tuple[str, str, str], Series] = {}
    for arn, window in found:
        key = (arn, window.metric_name, window.source)
        series = by_metric.get(key)
        if series is None:
            series = by_metric[key] = Series("attribution", window.metric_name, "EventAttributionSource",
                                             window.source, 0)
        v = window.value_sum
        series.minutes[window.window_start] = [1, 0, 0, 1, v, v, v]
    for (arn, name, source), series in by_metric.items():
        yield Metric(name, (("EventAttributionSource", source), ("MetricAttributionArn", arn)), "None", series,
                     "latency")


def metrics(ctx: RequestContext, since: float = 0.0, until: float | None = None) -> Iterator[Metric]:
    """Every metric there are figures for (every process's, from minute `since` to before `until`; the
    retention window when not given), attributed ones first."""
    yield from attributed(ctx)
    with ctx.read_engine.connect() as conn:
        found = published.series(conn, since, until)
    for series in found:
        dims = ((series.dimension, series.value),) if series.dimension and series.value else ()
        if series.kind == "size":
            yield Metric(series.name, dims, "Bytes", series, "latency")
            continue
        names = series.names()
        if names is None:
            continue
        yield Metric(names.requests, dims, "Count", series, "requests")
        yield Metric(names.client_errors, dims, "Count", series, "client")
        if names.server_errors:
            yield Metric(names.server_errors, dims, "Count", series, "server")
        yield Metric(names.latency, dims, names.latency_unit, series, "latency")


def _dims(raw: list[dict[str, Any]] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((d["name"], d.get("value", "")) for d in raw or []))


def _find(candidates: list[Metric], namespace: str, name: str, dimensions: list[dict[str, Any]] | None,
          ) -> Metric | None:
    if namespace != NAMESPACE:
        return None
    wanted = _dims(dimensions)
    for metric in candidates:
        if metric.name == name and tuple(sorted(metric.dimensions)) == wanted:
            return metric
    return None


def _period(period: int | None) -> int:
    if period is None or period < 60 or period % 60:
        raise InvalidParameterValueException(
            f"The parameter Period must be a multiple of 60 seconds (Tastemaker keeps one statistic set per "
            f"minute); got {period}.")
    return period


def _range(start: float, end: float) -> None:
    if start >= end:
        raise InvalidParameterValueException("The parameter StartTime must be earlier than EndTime.")


def _stat(point: list[float], stat: str) -> float:
    n, total, low, high = point
    return {"SampleCount": n, "Sum": total, "Minimum": low, "Maximum": high, "Average": total / n}[stat]


@operation("ListMetrics")
def list_metrics(ctx: RequestContext, namespace: str | None = None, metric_name: str | None = None,
                 dimensions: list[dict[str, Any]] | None = None, next_token: str | None = None,
                 recently_active: str | None = None, **_: Any) -> dict[str, Any]:
    found: list[dict[str, Any]] = []
    if namespace in (None, NAMESPACE):
        for metric in metrics(ctx):
            if metric_name is not None and metric.name != metric_name:
                continue
            have = dict(metric.dimensions)
            if any(f["name"] not in have or ("value" in f and have[f["name"]] != f["value"])
                   for f in dimensions or []):
                continue
            found.append({"namespace": NAMESPACE, "metric_name": metric.name,
                          "dimensions": [{"name": k, "value": v} for k, v in metric.dimensions]})
    offset = 0
    if next_token:
        try:
            offset = int(orjson.loads(base64.urlsafe_b64decode(next_token.encode()))["offset"])
        except Exception as exc:
            raise InvalidNextToken("The NextToken is not valid; pass the one the previous page returned.") from exc
    out: dict[str, Any] = {"metrics": found[offset:offset + PAGE]}
    if len(found) > offset + PAGE:
        out["next_token"] = base64.urlsafe_b64encode(orjson.dumps({"offset": offset + PAGE})).decode()
    return out


@operation("GetMetricStatistics")
def get_metric_statistics(ctx: RequestContext, namespace: str, metric_name: str, start_time: float,
                          end_time: float, period: int, dimensions: list[dict[str, Any]] | None = None,
                          statistics: list[str] | None = None, extended_statistics: list[str] | None = None,
                          unit: str | None = None) -> dict[str, Any]:
    if extended_statistics:
        raise InvalidParameterValueException(
            "Tastemaker keeps no percentiles: ask for Statistics among " + ", ".join(STATISTICS) + ".")
    if not statistics:
        raise InvalidParameterCombinationException("Either Statistics or ExtendedStatistics must be given.")
    _range(start_time, end_time)
    period = _period(period)
    metric = _find(list(metrics(ctx, start_time, end_time)), namespace, metric_name, dimensions)
    datapoints: list[dict[str, Any]] = []
    if metric is not None and unit in (None, metric.unit):
        for ts, point in sorted(metric.datapoints(start_time, end_time, period).items()):
            entry: dict[str, Any] = {"timestamp": float(ts), "unit": metric.unit}
            for stat in statistics:
                entry[_snake(stat)] = _stat(point, stat)
            datapoints.append(entry)
    return {"label": metric_name, "datapoints": datapoints}


def _snake(stat: str) -> str:
    return {"SampleCount": "sample_count", "Average": "average", "Sum": "sum", "Minimum": "minimum",
            "Maximum": "maximum"}[stat]


@operation("GetMetricData")
def get_metric_data(ctx: RequestContext, metric_data_queries: list[dict[str, Any]], start_time: float,
                    end_time: float, next_token: str | None = None, scan_by: str | None = None,
                    max_datapoints: int | None = None, **_: Any) -> dict[str, Any]:
    _range(start_time, end_time)
    results: list[dict[str, Any]] = []
    candidates = list(metrics(ctx, start_time, end_time))  # one read of the store for every query
    for query in metric_data_queries:
        if "expression" in query:
            raise InvalidParameterValueException(
                f"Query {query['id']}: Tastemaker answers MetricStat queries only; metric math (Expression) "
                "is not supported.")
        stat_query = query.get("metric_stat")
        if stat_query is None:
            raise InvalidParameterValueException(f"Query {query['id']} needs a MetricStat.")
        stat = stat_query["stat"]
        if stat not in STATISTICS:
            raise InvalidParameterValueException(
                f"Query {query['id']}: statistic {stat!r} is not kept; use one of {', '.join(STATISTICS)}.")
        period = _period(stat_query.get("period"))
        spec = stat_query["metric"]
        metric = _find(candidates, spec.get("namespace", ""), spec.get("metric_name", ""), spec.get("dimensions"))
        points: list[tuple[int, float]] = []
        if metric is not None and stat_query.get("unit") in (None, metric.unit):
            points = [(ts, _stat(p, stat)) for ts, p in metric.datapoints(start_time, end_time, period).items()]
        points.sort(reverse=scan_by != "TimestampAscending")
        if query.get("return_data", True):
            results.append({"id": query["id"], "label": query.get("label") or spec.get("metric_name"),
                            "timestamps": [float(ts) for ts, _ in points], "values": [v for _, v in points],
                            "status_code": "Complete"})
    return {"metric_data_results": results, "messages": []}
