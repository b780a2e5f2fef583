"""Request and job metrics under CloudWatch's names (namespace AWS/Personalize), kept once for two readers.

Each (operation, dimension) pair is one `Series`: cumulative counters and a latency histogram (what the
Prometheus exposition shows, tastemaker.monitoring.prometheus) plus one statistic set per minute for the last
`RETENTION_MINUTES` (what the CloudWatch read API aggregates, tastemaker.monitoring.cloudwatch). A request
updates one series with a few integer additions and a dictionary lookup, on the event loop's thread; jobs
update theirs under a lock from worker threads. Readers copy what they read.

The names follow spec section 9.2: `GetRecommendations` (a count, Sum only), `GetRecommendations4xxErrors`,
`...5xxErrors`, `GetRecommendationsLatency` (ms, successful calls only) per CampaignArn or RecommenderArn;
`PutEventsRequests` ... `PutEventLatency` per EventTrackerArn; `PutItems*`/`PutUsers*` per DatasetArn;
`DatasetImportJob{Requests,Error,ExecutionTime}` and `DatasetSize` (the bytes each successful import read,
a "size" series whose latency columns hold bytes) per DatasetArn, and `SolutionTrainingJob*` per SolutionArn.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

RETENTION_MINUTES = 24 * 60
MAX_SERIES = 5000  # request series (operation x dimension value); past it, new values count without dimension
# Latency histogram bounds in ms (Prometheus buckets; CloudWatch keeps min/max/sum/count per minute).
BUCKETS_MS: tuple[float, ...] = (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
JOB_BUCKETS_S: tuple[float, ...] = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
SIZE_BUCKETS: tuple[float, ...] = (1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11)
DATASET_SIZE = "DatasetSize"  # bytes read by each finished import, per DatasetArn (a "size" series)


@dataclass(frozen=True)
class Names:
    """The metric names one operation (or job kind) publishes: count, 4xx (or job error), 5xx, latency."""

    requests: str
    client_errors: str
    server_errors: str | None
    latency: str
    latency_unit: str = "Milliseconds"


def _runtime(op: str, requests: str | None = None, latency: str | None = None) -> Names:
    return Names(requests or f"{op}Requests", f"{op}4xxErrors", f"{op}5xxErrors", latency or f"{op}Latency")


# Spec 9.2. GetActionRecommendations, PutActions and PutActionInteractions follow the documented pattern.
OPERATION_NAMES: dict[str, Names] = {
    "GetRecommendations": _runtime("GetRecommendations", requests="GetRecommendations"),
    "GetPersonalizedRanking": _runtime("GetPersonalizedRanking"),
    "GetActionRecommendations": _runtime("GetActionRecommendations"),
    "PutEvents": _runtime("PutEvents", latency="PutEventLatency"),
    "PutItems": _runtime("PutItems"),
    "PutUsers": _runtime("PutUsers"),
    "PutActions": _runtime("PutActions"),
    "PutActionInteractions": _runtime("PutActionInteractions"),
}
JOB_NAMES: dict[str, Names] = {
    "import": Names("DatasetImportJobRequests", "DatasetImportJobError", None, "DatasetImportJobExecutionTime",
                    "Seconds"),
    "train": Names("SolutionTrainingJobRequests", "SolutionTrainingJobError", None,
                   "SolutionTrainingJobExecutionTime", "Seconds"),
}
# The request parameter that names an operation's dimension, and the dimension's CloudWatch name.
DIMENSION_PARAMS: tuple[tuple[str, str], ...] = (
    ("campaign_arn", "CampaignArn"), ("recommender_arn", "RecommenderArn"), ("dataset_arn", "DatasetArn"))
JOB_DIMENSIONS = {"import": "DatasetArn", "train": "SolutionArn"}


class Series:
    """One operation (or job kind) for one dimension value: totals, a histogram, and per-minute statistics.

    A minute's statistic set is [requests, 4xx, 5xx, latency count, latency sum, latency min, latency max].
    """

    __slots__ = ("buckets", "client_errors", "dimension", "kind", "latency_count", "latency_sum", "minutes",
                 "name", "requests", "server_errors", "value")

    def __init__(self, kind: str, name: str, dimension: str | None, value: str | None, buckets: int) -> None:
        self.kind = kind  # "request", "job", "size" (or "attribution", built by the CloudWatch reader)
        self.name = name  # the operation, or the job kind
        self.dimension = dimension
        self.value = value
        self.requests = self.client_errors = self.server_errors = self.latency_count = 0
        self.latency_sum = 0.0
        self.buckets = [0] * (buckets + 1)  # the last one is +Inf
        self.minutes: dict[int, list[float]] = {}

    def add(self, now: float, status: int, latency: float, bounds: tuple[float, ...]) -> None:
        minute = int(now) // 60 * 60
        window = self.minutes.get(minute)
        if window is None:
            window = self.minutes[minute] = [0, 0, 0, 0, 0.0, latency, latency]
            if len(self.minutes) > RETENTION_MINUTES:
                del self.minutes[next(iter(self.minutes))]
        self.requests += 1
        window[0] += 1
        if status >= 500:
            self.server_errors += 1
            window[2] += 1
        elif status >= 400:
            self.client_errors += 1
            window[1] += 1
        else:
            self.latency_count += 1
            self.latency_sum += latency
            self.buckets[bisect_left(bounds, latency)] += 1
            window[3] += 1
            window[4] += latency
            window[5] = min(window[5], latency)
            window[6] = max(window[6], latency)

    def names(self) -> Names | None:
        return (OPERATION_NAMES if self.kind == "request" else JOB_NAMES).get(self.name)

    def snapshot(self) -> dict[int, list[float]]:
        return dict(list(self.minutes.items()))

    def key(self) -> tuple[str, str, str | None]:
        return (self.kind, self.name, self.value)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "dimension": self.dimension, "value": self.value,
                "requests": self.requests, "client_errors": self.client_errors,
                "server_errors": self.server_errors, "latency_count": self.latency_count,
                "latency_sum": self.latency_sum, "buckets": list(self.buckets),
                "minutes": [[minute, *w] for minute, w in self.snapshot().items()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Series:
        series = cls(d["kind"], d["name"], d["dimension"], d["value"], len(d["buckets"]) - 1)
        series.merge_dict(d)
        return series

    def merge_dict(self, d: dict[str, Any], since: float = 0.0) -> None:
        """Add another process's figures for the same series (minutes before `since` are dropped)."""
        self.requests += d["requests"]
        self.client_errors += d["client_errors"]
        self.server_errors += d["server_errors"]
        self.latency_count += d["latency_count"]
        self.latency_sum += d["latency_sum"]
        self.buckets = [a + b for a, b in zip(self.buckets, d["buckets"], strict=True)]
        for minute, *other in d["minutes"]:
            if minute < since:
                continue
            mine = self.minutes.get(minute)
            if mine is None:
                self.minutes[minute] = list(other)
                continue
            if other[3]:  # the other has latency figures: combine the minimum and maximum
                mine[5] = min(mine[5], other[5]) if mine[3] else other[5]
                mine[6] = max(mine[6], other[6]) if mine[3] else other[6]
            for i in range(5):
                mine[i] += other[i]


class Recorder:
    """Every series of this process (the API's requests and the embedded job runner's jobs)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str | None], Series] = {}
        self.jobs: dict[tuple[str, str | None], Series] = {}
        self.sizes: dict[tuple[str, str | None], Series] = {}
        self._lock = threading.Lock()

    def request(self, now: float, operation: str, params: dict[str, Any] | None, status: int,
                latency_ms: float, dimension: tuple[str, str] | None = None) -> None:
        """Count one answered request (its dimension from its parameters unless given)."""
        if dimension is None and params:
            for param, dim in DIMENSION_PARAMS:
                value = params.get(param)
                if value:
                    dimension = (dim, value)
                    break
        key = (operation, dimension[1] if dimension else None)
        series = self.requests.get(key)
        if series is None and len(self.requests) >= MAX_SERIES:  # ARNs from clients: bound what they can add
            dimension, key = None, (operation, None)
            series = self.requests.get(key)
        if series is None:
            series = self.requests[key] = Series("request", operation, dimension[0] if dimension else None,
                                                 key[1], len(BUCKETS_MS))
        series.add(now, status, latency_ms, BUCKETS_MS)

    def job(self, now: float, kind: str, parent_arn: str | None, failed: bool, seconds: float) -> None:
        """Count one finished job of a kind, for the resource its job belongs to (dataset, solution)."""
        dimension = JOB_DIMENSIONS.get(kind) if parent_arn else None
        key = (kind, parent_arn if dimension else None)
        with self._lock:
            series = self.jobs.get(key)
            if series is None:
                series = self.jobs[key] = Series("job", kind, dimension, key[1], len(JOB_BUCKETS_S))
            series.add(now, 400 if failed else 200, seconds, JOB_BUCKETS_S)

    def dataset_size(self, now: float, dataset_arn: str, size_bytes: int) -> None:
        """Count the bytes one successful import read into a dataset."""
        key = (DATASET_SIZE, dataset_arn)
        with self._lock:
            series = self.sizes.get(key)
            if series is None:
                series = self.sizes[key] = Series("size", DATASET_SIZE, "DatasetArn", dataset_arn, len(SIZE_BUCKETS))
            series.add(now, 200, float(size_bytes), SIZE_BUCKETS)

    def all_series(self) -> list[Series]:
        return list(self.requests.values()) + list(self.jobs.values()) + list(self.sizes.values())


METRICS = Recorder()  # the process's one recorder (API requests and the jobs it runs)
