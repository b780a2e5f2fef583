"""The Prometheus exposition (`/metrics`, or `--metrics-port` on loopback) of the same series CloudWatch reads,
summed over every process of the data directory (tastemaker.monitoring.shared).

A custom collector turns the process's series (tastemaker.monitoring.metrics) into metric families at scrape
time, so a request pays for one series update and nothing here. Families keep CloudWatch's names and
dimensions as labels: `GetRecommendations_total{CampaignArn=...}`, `GetRecommendations4xxErrors_total`,
`GetRecommendationsLatency` (a histogram in ms), `PutEventsRequests_total{EventTrackerArn=...}`,
`DatasetImportJobExecutionTime` (seconds), `DatasetSize` (bytes per import) ..., plus every operation's
`tastemaker_requests_total`, metric attribution's totals (`tastemaker_attributed_value_total`,
`tastemaker_attributed_events_total`) and process health: the job queue's depth, each running batch job's progress
(`tastemaker_batch_job_*`), each dataset's stored rows and each deployment's model and index memory (read from the
metadata store), and the process's CPU and memory (prometheus-client's process collector).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from tastemaker.monitoring import shared
from tastemaker.monitoring.metrics import BUCKETS_MS, DATASET_SIZE, JOB_BUCKETS_S, SIZE_BUCKETS, Series
from tastemaker.services import Services
from tastemaker.store import attribution, stats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
log = logging.getLogger("tastemaker.monitoring")


class SeriesCollector(Collector):
    """Families built from the recorder's series and the store's figures at each scrape."""

    def __init__(self, services: Services | None) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("tastemaker_requests", "API calls answered, by operation and status class",
                                       labels=["operation", "status"])
        # One family per CloudWatch name; its labels are every dimension its series carry ("" where absent).
        grouped: dict[str, list[Series]] = {}
        size = HistogramMetricFamily(DATASET_SIZE, "bytes read by each successful import", labels=["DatasetArn"])
        for series in shared.all_series():
            if series.kind == "size":
                size.add_metric([series.value or ""], _buckets(series), series.latency_sum)
            if series.kind == "request":
                for status, n in (("2xx", series.requests - series.client_errors - series.server_errors),
                                  ("4xx", series.client_errors), ("5xx", series.server_errors)):
                    if n:
                        requests.add_metric([series.name, status], n)
            if series.names() is not None:
                grouped.setdefault(series.name + "/" + series.kind, []).append(series)
        yield requests
        yield size
        for members in grouped.values():
            names = members[0].names()
            assert names is not None
            labels = sorted({s.dimension for s in members if s.dimension})
            counters = [CounterMetricFamily(name, doc, labels=labels) for name, doc in (
                (names.requests, "calls (the CloudWatch metric)"),
                (names.client_errors, "4xx errors, or failed jobs (the CloudWatch metric)"),
                (names.server_errors, "5xx errors (the CloudWatch metric)")) if name]
            unit = "ms" if names.latency_unit == "Milliseconds" else "seconds"
            latency = HistogramMetricFamily(names.latency, f"latency of successful calls in {unit}", labels=labels)
            for series in members:
                values = [(series.value or "") if series.dimension == label else "" for label in labels]
                for family, n in zip(counters, (series.requests, series.client_errors, series.server_errors),
                                     strict=False):
                    family.add_metric(values, n)
                latency.add_metric(values, _buckets(series), series.latency_sum)
            yield from counters
            yield latency
        yield from self._store()

    def _store(self) -> Iterator[Metric]:
        if self.services is None:
            return
        try:
            with self.services.read_engine.connect() as conn:
                depth = stats.queue_depth(conn)
                rows = stats.dataset_rows(conn)
                deployments = stats.deployment_bytes(conn)
                batches = stats.batch_progress(conn)
                attributed = attribution.totals(conn)
        except Exception:
            log.warning("metrics: the metadata store did not answer", exc_info=True)
            return
        queue = GaugeMetricFamily("tastemaker_job_queue_depth", "jobs queued or running", labels=["state"])
        for state, n in depth.items():
            queue.add_metric([state], n)
        yield queue
        size = GaugeMetricFamily("tastemaker_dataset_rows", "rows stored per dataset", labels=["DatasetArn"])
        for arn, n in rows.items():
            size.add_metric([arn], n)
        yield size
        model = GaugeMetricFamily("tastemaker_deployment_model_bytes", "model memory a deployment serves from",
                                  labels=["arn", "kind"])
        index = GaugeMetricFamily("tastemaker_deployment_index_bytes", "candidate index memory of a deployment",
                                  labels=["arn", "kind"])
        for arn, kind, model_bytes, index_bytes in deployments:
            model.add_metric([arn, kind], model_bytes)
            index.add_metric([arn, kind], index_bytes)
        yield model
        yield index
        labels = ["metric_attribution_arn", "metric", "event_type", "source"]
        value = CounterMetricFamily("tastemaker_attributed_value", "metric attribution: the SUM (or SAMPLECOUNT) "
                                    "attributed to each source, all windows", labels=labels)
        events = CounterMetricFamily("tastemaker_attributed_events", "metric attribution: events attributed to "
                                     "each source", labels=labels)
        for arn, metric, event_type, source, total, count in attributed:
            value.add_metric([arn, metric, event_type, source], total)
            events.add_metric([arn, metric, event_type, source], count)
        yield value
        yield events
        yield from _batch_families(batches)


def _batch_families(batches: list[tuple[str, str, str, dict[str, Any]]]) -> Iterator[Metric]:
    """The progress of each batch job pending or running, as its worker last recorded it (every few seconds)."""
    families = {key: GaugeMetricFamily(f"tastemaker_batch_job_{key}", doc, labels=["arn", "kind", "status"])
                for key, doc in (("lines_processed", "input lines answered so far by a running batch job"),
                                 ("lines_failed", "input lines answered with an error so far"),
                                 ("files_done", "input files whose output is published"),
                                 ("files_total", "input files of the job"))}
    for arn, kind, status, progress in batches:
        for key, family in families.items():
            family.add_metric([arn, kind, status], float(progress.get(key) or 0))
    yield from families.values()


def _buckets(series: Series) -> list[tuple[str, float]]:
    bounds = {"request": BUCKETS_MS, "job": JOB_BUCKETS_S, "size": SIZE_BUCKETS}[series.kind]
    out: list[tuple[str, float]] = []
    running = 0
    for bound, n in zip((*bounds, float("inf")), series.buckets, strict=True):
        running += n
        out.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
    return out


def registry(services: Services | None) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(SeriesCollector(services))
    ProcessCollector(registry=reg)
    return reg


def exposition(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)


def serve(reg: CollectorRegistry, port: int, host: str = "127.0.0.1") -> None:
    """Expose the registry on its own port (a daemon thread; loopback unless told otherwise)."""
    start_http_server(port, addr=host, registry=reg)
