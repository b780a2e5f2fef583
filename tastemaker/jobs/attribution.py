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

import logging
from collections import defaultdict
from typing import Any

from tastemaker.control.metric_attributions import (
    MAX_SOURCES,
    WINDOW_SECONDS,
    active_attributions,
    parse_expression,
)
from tastemaker.control.recommendation_ids import comparison_label, digest_of, source_digest
from tastemaker.services import Services
from tastemaker.store import attribution, resources
from tastemaker.store.attribution import AttributableEvent, Window
from tastemaker.store.records import Dataset, MetricAttribution

log = logging.getLogger("tastemaker.jobs")
MAX_AGE_SECONDS = 14 * 86_400
BATCH = 5000


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
                return total
            known_sources = {w.source for w in attribution.windows(conn, arn)}
            sums: dict[tuple[str, str, int, str], list[float]] = defaultdict(lambda: [0.0, 0])
            for event in batch:
                if event.received_at - event.sent_at > MAX_AGE_SECONDS:
                    continue
                source = _source(event, issuers)
                if source is None:
                    continue
                if source not in known_sources and len(known_sources) >= MAX_SOURCES:
                    log.warning("metric attribution %s already has %d sources; %s is not counted", arn,
                                MAX_SOURCES, source)
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
            if attribution.advance(conn, arn, position, batch[-1].id, [
                    Window(name, source, window, event_type, float(s), int(n))
                    for (name, source, window, event_type), (s, n) in sums.items()]):
                total += len(batch)  # else another aggregator counted this batch first: read on from its position
