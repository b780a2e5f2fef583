"""The metric attribution aggregator: streamed events -> attributed SUM / SAMPLECOUNT per 15-minute window.

For every ACTIVE metric attribution it reads the group's events after its stored position (in batches, in
arrival order), and for each event and each metric of the event's type: finds the source (the event's
EVENT_ATTRIBUTION_SOURCE, else the campaign or recommender whose digest its RECOMMENDATION_ID carries; events
with neither are not attributed), the value (1 for SAMPLECOUNT, the event's column for SUM(Interactions.X), the
item's column in the current Items data for SUM(Items.X); missing values add nothing) and the window
(sentAt rounded down to 15 minutes). Events recorded before a metric existed and events sent more than 14
days before they were recorded do not count (Personalize). The windows and the new position are written in
one transaction with a compare-and-set on the position, so neither a crash nor a second aggregator
counts an event twice. It runs as a maintenance step of the job runner and
before `tastemaker attribution` prints.
"""

from __future__ import annotations

import csv
import logging
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from tastemaker.control.metric_attributions import (
    MAX_SOURCES,
    WINDOW_SECONDS,
    active_attributions,
    parse_expression,
)
from tastemaker.control.recommendation_ids import comparison_label, digest_of, source_digest
from tastemaker.data.jsonl import publish_file
from tastemaker.data.sources import DataLocationError
from tastemaker.services import Services
from tastemaker.store import attribution, resources
from tastemaker.store.attribution import AttributableEvent, Window
from tastemaker.store.records import Dataset, DatasetImportJob, MetricAttribution
from tastemaker.store.status import Status

log = logging.getLogger("tastemaker.jobs")
MAX_AGE_SECONDS = 14 * 86_400
BATCH = 5000
UNDEFINED_SOURCE = "SOURCE_NAME_UNDEFINED"  # the reports' label for events with no source (Personalize)
REPORT_COLUMNS = ("METRIC_NAME", "EVENT_TYPE", "VALUE", "MATH_FUNCTION", "EVENT_ATTRIBUTION_SOURCE", "TIMESTAMP")


def aggregate_all(services: Services) -> int:
    """Aggregate every ACTIVE metric attribution up to the newest event; returns the events read."""
    with services.engine.connect() as conn:
        todo = active_attributions(conn)
    return sum(aggregate(services, found) for found in todo)


def _issuers(services: Services, group_arn: str) -> dict[str, str]:
    """digest -> source: the ARN of each of the group's campaigns and recommenders, and each campaign's
    comparison-arm label (its ARN + "#comparison")."""
    with services.engine.connect() as conn:
        found = resources.children(conn, kind=("campaign", "recommender"), dataset_group_arn=group_arn)
    sources = [r.arn for r in found] + [comparison_label(r.arn) for r in found if r.kind == "campaign"]
    return {source_digest(source): source for source in sources}


def _item_column(services: Services, group_arn: str, column: str) -> dict[str, float]:
    """ITEM_ID -> numeric value of `column` in the group's current Items data."""
    from tastemaker.control.datasets import dataset_of_type
    from tastemaker.control.schemas import load_schema
    from tastemaker.data.tables import read_dataset
    from tastemaker.store.dataset_parts import part_keys

    with services.engine.connect() as conn:
        dataset = dataset_of_type(conn, group_arn, "Items")
        if dataset is None:
            return {}
        keys = part_keys(conn, dataset.arn)
        _res, schema = load_schema(conn, Dataset.of(dataset).schema_arn)
    if not keys:
        return {}
    table = read_dataset([services.blobs.local_path(k) for k in keys], schema, "Items")
    name = next((c for c in table.column_names if c.upper() == column), None)
    if name is None:
        return {}
    ids = table.column("ITEM_ID").to_pylist()
    values = table.column(name).to_pylist()
    return {str(i): float(v) for i, v in zip(ids, values, strict=True) if v is not None}


def _value(event: AttributableEvent, dataset: str | None, column: str | None,
           items: dict[str, dict[str, float]]) -> float | None:
    if dataset is None:
        return 1.0
    if dataset == "Interactions":
        raw = next((v for k, v in event.record.items() if k.upper() == column), None)
        return float(raw) if isinstance(raw, int | float) else None
    return items.get(str(column), {}).get(str(event.item_id)) if event.item_id is not None else None


def _source(event: AttributableEvent, issuers: dict[str, str]) -> str | None:
    record = {k.upper(): v for k, v in event.record.items()}
    if record.get("EVENT_ATTRIBUTION_SOURCE"):
        return str(record["EVENT_ATTRIBUTION_SOURCE"])
    digest = digest_of(record.get("RECOMMENDATION_ID"))
    return issuers.get(digest) if digest is not None else None


Sums = dict[tuple[str, str, int, str], list[float]]


def _attribute(arn: str, batch: list[AttributableEvent], parsed: list[tuple[dict[str, Any], str, str | None,
               str | None]], issuers: dict[str, str], items: dict[str, dict[str, float]], known_sources: set[str],
               *, max_age: float | None = MAX_AGE_SECONDS, undefined: str | None = None) -> Sums:
    """(metric, source, window start, event type) -> [value sum, sample count] of the events that count.

    Events with no source are skipped, or counted under `undefined` when given (the S3 reports' label)."""
    sums: Sums = defaultdict(lambda: [0.0, 0])
    for event in batch:
        if max_age is not None and event.received_at - event.sent_at > max_age:
            continue
        source = _source(event, issuers) or undefined
        if source is None:
            continue
        if source not in known_sources and len(known_sources) >= MAX_SOURCES:
            log.warning("metric attribution %s already has %d sources; %s is not counted", arn, MAX_SOURCES, source)
            continue
        for metric, _function, dataset, column in parsed:
            if metric["event_type"] != event.event_type or event.received_at < metric.get("added_at", 0):
                continue
            value = _value(event, dataset, column, items)
            if value is None:
                continue
            known_sources.add(source)
            window = int(event.sent_at // WINDOW_SECONDS) * WINDOW_SECONDS
            cell = sums[(metric["metric_name"], source, window, metric["event_type"])]
            cell[0] += value
            cell[1] += 1
    return sums


def _windows(sums: Sums) -> list[Window]:
    return [Window(name, source, window, event_type, float(s), int(n))
            for (name, source, window, event_type), (s, n) in sums.items()]


def aggregate(services: Services, found: resources.Resource) -> int:
    arn, group = found.arn, found.dataset_group_arn or ""
    metrics: list[dict[str, Any]] = list(MetricAttribution.of(found).metrics)
    parsed = [(m, *parse_expression(m["expression"])) for m in metrics]
    issuers = _issuers(services, group)
    items = {column: _item_column(services, group, column)
             for _m, _f, dataset, column in parsed if dataset == "Items" and column}
    total = 0
    while True:
        with services.engine.begin() as conn:
            position = attribution.cursor(conn, arn)
            batch = attribution.events_after(conn, group, position, BATCH)
            if not batch:
                break
            known_sources = {w.source for w in attribution.windows(conn, arn)}
            windows = _windows(_attribute(arn, batch, parsed, issuers, items, known_sources))
            moved = attribution.advance(conn, arn, position, batch[-1].id, windows)
        if moved:  # else another aggregator counted this batch first: read on from its position
            total += len(batch)
            publish(services, group, arn, windows)
    return total + count_imports(services, found, parsed, issuers, items)


def count_imports(services: Services, found: resources.Resource, parsed: list[tuple[dict[str, Any], str, str | None,
                  str | None]], issuers: dict[str, str], items: dict[str, dict[str, float]]) -> int:
    """Count the group's Interactions bulk imports that finished after the attribution was created, each once:
    INCREMENTAL ones into the windows (as PutEvents data), and, when the import asked for it
    (publishAttributionMetricsToS3) and the attribution has an s3DataDestination, every row of any import into
    a report file there. Returns the rows read."""
    from tastemaker.control.datasets import dataset_of_type

    arn, group = found.arn, found.dataset_group_arn or ""
    with services.engine.connect() as conn:
        dataset = dataset_of_type(conn, group, "Interactions")
        if dataset is None:
            return 0
        done = attribution.counted_imports(conn, arn)
        jobs = [j for j in resources.children(conn, kind="dataset_import_job", dataset_group_arn=group)
                if j.status == Status.ACTIVE and j.arn not in done and j.updated_at >= found.created_at
                and DatasetImportJob.of(j).dataset_arn == dataset.arn]
        keys = {j.arn: attribution.import_part_keys(conn, j.arn) for j in jobs}
    rows = 0
    for job in sorted(jobs, key=lambda j: j.updated_at):
        batch = _import_events(services, keys[job.arn], job.updated_at)
        incremental = DatasetImportJob.of(job).import_mode == "INCREMENTAL"
        with services.engine.connect() as conn:
            known_sources = {w.source for w in attribution.windows(conn, arn)}
        windows = _windows(_attribute(arn, batch, parsed, issuers, items, known_sources)) if incremental else []
        destination = MetricAttribution.of(found).metrics_output_config.get("s3_data_destination") or {}
        if job.body.get("publish_attribution_metrics_to_s3") and destination.get("path"):
            report = _attribute(arn, batch, parsed, issuers, items, set(), max_age=None,
                                undefined=UNDEFINED_SOURCE)
            write_report(services, destination["path"], DatasetImportJob.of(job).import_mode, job.updated_at,
                         parsed, report)
        with services.engine.begin() as conn:
            counted = attribution.count_import(conn, arn, job.arn, len(batch), windows)
        if counted:
            rows += len(batch)
            publish(services, group, arn, windows)
    return rows


def _import_events(services: Services, keys: list[str], imported_at: float) -> list[AttributableEvent]:
    """One import's rows as events recorded when the import finished."""
    import pyarrow.parquet as pq

    out: list[AttributableEvent] = []
    for key in keys:
        for row in pq.read_table(services.blobs.local_path(key)).to_pylist():
            record = {str(k).upper(): v for k, v in row.items()}
            out.append(AttributableEvent(0, str(record.get("EVENT_TYPE") or ""),
                                         None if record.get("ITEM_ID") is None else str(record["ITEM_ID"]),
                                         float(record.get("TIMESTAMP") or 0), imported_at, record))
    return out


def write_report(services: Services, path: str, import_mode: str, imported_at: float,
                 parsed: list[tuple[dict[str, Any], str, str | None, str | None]], sums: Sums) -> str:
    """Write `AggregatedAttributionMetrics-<import mode>-<unix time>.csv` (Personalize's columns) under `path`."""
    functions = {m["metric_name"]: function.lower() for m, function, _d, _c in parsed}
    folder = path if path.endswith("/") else path + "/"
    name = f"AggregatedAttributionMetrics-{import_mode}-{int(imported_at)}.csv"
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / name
        with local.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(REPORT_COLUMNS)
            for (metric, source, window, event_type), (value, _n) in sorted(sums.items()):
                writer.writerow([metric, event_type, float(value), functions.get(metric, "sum"), source, window])
        try:
            return publish_file(local, folder, name, import_roots=services.settings.effective_import_roots,
                                s3_client_factory=services.s3_client)
        except DataLocationError as exc:
            log.warning("metric attribution report: %s", exc.reason)
            return ""


def publish(services: Services, group: str, arn: str, windows: list[Window]) -> None:
    """PutMetricData of newly attributed values (one datum per window and source: what it added) to the
    configured CloudWatch namespace; nothing when none is configured. A failure is logged, not retried."""
    namespace = services.settings.attribution_cloudwatch_namespace
    if not namespace or not windows:
        return
    import boto3

    data = [{"MetricName": w.metric_name, "Timestamp": float(w.window_start), "Value": w.value_sum,
             "Unit": "None", "Dimensions": [{"Name": "EventAttributionSource", "Value": w.source[:1024]},
                                            {"Name": "DatasetGroupArn", "Value": group}]} for w in windows]
    try:
        client = boto3.client("cloudwatch", region_name=arn.split(":")[3] or services.settings.default_region)
        for start in range(0, len(data), 1000):
            client.put_metric_data(Namespace=namespace, MetricData=data[start:start + 1000])
    except Exception:
        log.warning("metric attribution %s: PutMetricData to %s failed", arn, namespace, exc_info=True)
