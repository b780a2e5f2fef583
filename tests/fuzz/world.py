"""The seeded world the fuzzer calls into, the ARNs it mixes into inputs, and state snapshots.

`seed()` builds, through boto3, a dataset group with Interactions/Items/Users data, a trained
user-personalization solution deployed in a campaign, an event tracker and filters, plus *decoys*: cheap
resources that destructive operations (Delete*, UpdateDataset) may really destroy, so the core stays usable
for the whole run. Core resources that deletes must refuse (a group with datasets, a schema in use, a solution
with a campaign) stay in the destructive pools: those calls are the interesting refusals.

`Snapshot` reads the server's metadata database read-only (through tastemaker.store, which owns the queries):
every resource row, the tags of the ARNs a request names, and for the events API the event counts and dataset
parts. `unexplained_changes` compares two snapshots, ignoring what background jobs change on their own: rows
whose status (or latest*Update record's status) is not final, their parents and children, and everything in
their dataset group.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tastemaker.store import dataset_parts, events, resources
from tastemaker.store.db import create_engine, read_only
from tests.e2e.datagen import INTERACTIONS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA, write_dataset

ACCOUNT_PREFIX = "arn:aws:personalize:us-east-1:000000000000:"
FINAL = {None, "ACTIVE", "CREATE FAILED", "CREATE STOPPED", "INACTIVE", "DELETE FAILED", "COMPLETED", "FAILED"}
SCHEMAS = {"Interactions": INTERACTIONS_SCHEMA, "Items": ITEMS_SCHEMA, "Users": USERS_SCHEMA}

# Member name -> the resource kind its ARN names (what a valid value points at).
ARN_KINDS: dict[str, str] = {
    "datasetGroupArn": "dataset_group", "datasetArn": "dataset", "schemaArn": "schema",
    "datasetImportJobArn": "dataset_import_job", "datasetExportJobArn": "dataset_export_job",
    "dataDeletionJobArn": "data_deletion_job", "solutionArn": "solution", "solutionVersionArn": "solution_version",
    "campaignArn": "campaign", "eventTrackerArn": "event_tracker", "filterArn": "filter",
    "recommenderArn": "recommender", "batchInferenceJobArn": "batch_inference_job",
    "batchSegmentJobArn": "batch_segment_job", "metricAttributionArn": "metric_attribution",
    "recipeArn": "recipe", "algorithmArn": "algorithm", "featureTransformationArn": "feature_transformation",
}
# ARN path word of each kind (for well-formed ARNs of resources that do not exist).
ARN_WORDS: dict[str, str] = {
    "dataset_group": "dataset-group", "dataset": "dataset", "schema": "schema",
    "dataset_import_job": "dataset-import-job", "dataset_export_job": "dataset-export-job",
    "data_deletion_job": "data-deletion-job", "solution": "solution", "solution_version": "solution",
    "campaign": "campaign", "event_tracker": "event-tracker", "filter": "filter", "recommender": "recommender",
    "batch_inference_job": "batch-inference-job", "batch_segment_job": "batch-segment-job",
    "metric_attribution": "metric-attribution",
}
# Operations that destroy what they name when they succeed: they get decoys, never the core.
DESTRUCTIVE_PREFIXES = ("Delete", "UpdateDataset", "StopRecommender")


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_final(describe: Callable[[], dict[str, Any]], key: str, timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.time() + timeout
    last: dict[str, Any] = {}
    while time.time() < deadline:
        last = describe()[key]
        if last.get("status") in FINAL:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{key} still {last.get('status')} after {timeout}s")


@dataclass
class World:
    """What exists on the server: core ARNs by kind, decoys by kind, and ids that reach real data."""

    core: dict[str, list[str]] = field(default_factory=dict)
    decoys: dict[str, list[str]] = field(default_factory=dict)
    created: dict[str, list[str]] = field(default_factory=dict)  # made by accepted fuzz calls
    tracking_ids: list[str] = field(default_factory=list)
    data_paths: list[str] = field(default_factory=list)
    group_arn: str = ""
    ranking_campaign: str = ""
    hyperparameters: list[str] = field(default_factory=list)  # every recipe's hyperparameter names
    custom_recipes: list[str] = field(default_factory=list)  # recipes for CreateSolution (no domain use cases)

    def arns(self, kind: str, destructive: bool) -> list[str]:
        """Existing ARNs a valid value for `kind` may take (created ones included), decoys for destructive ops."""
        if destructive:
            keep = {"dataset_group", "schema", "solution"}  # the core refuses these deletes (dependents)
            pool = list(self.decoys.get(kind, [])) + (list(self.core.get(kind, [])) if kind in keep else [])
        else:
            pool = list(self.core.get(kind, [])) + list(self.decoys.get(kind, []))
        return pool + list(self.created.get(kind, []))

    def all_arns(self) -> list[str]:
        return sorted({arn for pools in (self.core, self.decoys) for arns in pools.values() for arn in arns})

    def note_created(self, answer_body: Any) -> None:
        """Remember ARNs an accepted Create* returned, for later operations' pools."""
        if not isinstance(answer_body, dict):
            return
        for member, value in answer_body.items():
            kind = ARN_KINDS.get(member)
            if kind and isinstance(value, str):
                bucket = self.created.setdefault(kind, [])
                if value not in bucket and len(bucket) < 20:
                    bucket.append(value)


def seed(personalize: Any, import_root: Path) -> World:
    """Create the core world and the decoys; wait until everything is ACTIVE."""
    world = World()
    core, decoys = world.core, world.decoys
    paths = write_dataset(import_root / _unique("fuzz"), users=60, items=40, per_user=20)
    world.data_paths = [str(p) for p in paths.values()]
    group = personalize.create_dataset_group(name=_unique("fuzz"))["datasetGroupArn"]
    spare_group = personalize.create_dataset_group(name=_unique("decoy"))["datasetGroupArn"]
    for arn in (group, spare_group):
        wait_final(lambda arn=arn: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    world.group_arn = group
    core["dataset_group"], decoys["dataset_group"] = [group], [spare_group]
    datasets: dict[str, str] = {}
    for kind, schema in SCHEMAS.items():
        schema_arn = personalize.create_schema(name=_unique(kind.lower()), schema=json.dumps(schema))["schemaArn"]
        core.setdefault("schema", []).append(schema_arn)
        datasets[kind] = personalize.create_dataset(name=_unique(kind.lower()), schemaArn=schema_arn,
                                                    datasetGroupArn=group, datasetType=kind)["datasetArn"]
    decoys["schema"] = [personalize.create_schema(name=_unique("decoy"),
                                                  schema=json.dumps(ITEMS_SCHEMA))["schemaArn"]]
    decoys["dataset"] = [personalize.create_dataset(name=_unique("decoy"), schemaArn=core["schema"][1],
                                                    datasetGroupArn=spare_group, datasetType="Items")["datasetArn"]]
    for arn in [*datasets.values(), *decoys["dataset"]]:
        wait_final(lambda arn=arn: personalize.describe_dataset(datasetArn=arn), "dataset")
    core["dataset"] = list(datasets.values())
    jobs = [personalize.create_dataset_import_job(
        jobName=_unique("imp"), datasetArn=datasets[kind],
        dataSource={"dataLocation": str(paths[kind.lower()])})["datasetImportJobArn"] for kind in datasets]
    for job in jobs:
        done = wait_final(lambda job=job: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                          "datasetImportJob")
        assert done["status"] == "ACTIVE", done.get("failureReason")
    core["dataset_import_job"] = jobs
    solution = personalize.create_solution(name=_unique("up"), datasetGroupArn=group, performAutoTraining=False,
                                           recipeArn="arn:aws:personalize:::recipe/aws-user-personalization")
    solution_arn = solution["solutionArn"]
    spare = personalize.create_solution(name=_unique("decoy"), datasetGroupArn=group, performAutoTraining=False,
                                        recipeArn="arn:aws:personalize:::recipe/aws-popularity-count")
    for arn in (solution_arn, spare["solutionArn"]):
        wait_final(lambda arn=arn: personalize.describe_solution(solutionArn=arn), "solution")
    core["solution"], decoys["solution"] = [solution_arn], [spare["solutionArn"]]
    ranking = personalize.create_solution(name=_unique("rank"), datasetGroupArn=group, performAutoTraining=False,
                                          recipeArn="arn:aws:personalize:::recipe/aws-personalized-ranking")
    wait_final(lambda: personalize.describe_solution(solutionArn=ranking["solutionArn"]), "solution")
    core["solution"].append(ranking["solutionArn"])
    versions = [personalize.create_solution_version(solutionArn=arn)["solutionVersionArn"]
                for arn in core["solution"]]
    for version in versions:
        done = wait_final(lambda version=version: personalize.describe_solution_version(
            solutionVersionArn=version), "solutionVersion")
        assert done["status"] == "ACTIVE", done.get("failureReason")
    core["solution_version"] = versions
    version = versions[0]
    campaign = personalize.create_campaign(name=_unique("fuzz"), solutionVersionArn=version)["campaignArn"]
    ranking_campaign = personalize.create_campaign(name=_unique("rank"), solutionVersionArn=versions[1])["campaignArn"]
    spare_campaign = personalize.create_campaign(name=_unique("decoy"), solutionVersionArn=version)["campaignArn"]
    tracker = personalize.create_event_tracker(name=_unique("fuzz"), datasetGroupArn=group)
    spare_tracker = personalize.create_event_tracker(name=_unique("decoy"), datasetGroupArn=spare_group)
    world.tracking_ids = [tracker["trackingId"], spare_tracker["trackingId"]]
    filters = [personalize.create_filter(name=_unique("fuzz"), datasetGroupArn=group, filterExpression=expr)[
        "filterArn"] for expr in ("EXCLUDE ItemID WHERE Items.GENRES IN ($GENRE)",
                                  'INCLUDE ItemID WHERE Items.GENRES IN ("Comedy")')]
    spare_filter = personalize.create_filter(name=_unique("decoy"), datasetGroupArn=group,
                                             filterExpression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")')
    for arn in (campaign, ranking_campaign, spare_campaign):
        done = wait_final(lambda arn=arn: personalize.describe_campaign(campaignArn=arn), "campaign")
        assert done["status"] == "ACTIVE", done.get("failureReason")
    for arn in (tracker["eventTrackerArn"], spare_tracker["eventTrackerArn"]):
        wait_final(lambda arn=arn: personalize.describe_event_tracker(eventTrackerArn=arn), "eventTracker")
    for arn in [*filters, spare_filter["filterArn"]]:
        wait_final(lambda arn=arn: personalize.describe_filter(filterArn=arn), "filter")
    core["campaign"], decoys["campaign"] = [campaign, ranking_campaign], [spare_campaign]
    world.ranking_campaign = ranking_campaign
    core["event_tracker"], decoys["event_tracker"] = [tracker["eventTrackerArn"]], [spare_tracker["eventTrackerArn"]]
    core["filter"], decoys["filter"] = filters, [spare_filter["filterArn"]]
    recipes = personalize.list_recipes()["recipes"]
    core["recipe"] = [r["recipeArn"] for r in recipes]
    world.custom_recipes = [r["recipeArn"] for r in recipes if not r.get("domain")]
    for arn in core["recipe"]:
        recipe = personalize.describe_recipe(recipeArn=arn)["recipe"]
        for kind, key in (("algorithm", "algorithmArn"), ("feature_transformation", "featureTransformationArn")):
            if recipe.get(key) and recipe[key] not in core.get(kind, []):
                core.setdefault(kind, []).append(recipe[key])
    for arn in core.get("algorithm", []):
        algorithm = personalize.describe_algorithm(algorithmArn=arn)["algorithm"]
        names = set(algorithm.get("defaultHyperParameters", {}))
        ranges = algorithm.get("defaultHyperParameterRanges", {})
        names |= {r["name"] for kind in ranges.values() for r in kind}
        world.hyperparameters = sorted(set(world.hyperparameters) | names)
    return world


# --- snapshots --------------------------------------------------------------------------------------------

Row = tuple[str, str | None, float, str, str | None, str | None]  # kind, status, updated_at, body, group, parent


@dataclass(frozen=True)
class Snapshot:
    rows: dict[str, Row]
    tags: dict[str, tuple[tuple[str, str], ...]]
    event_counts: dict[str, int]
    parts: dict[str, tuple[str, ...]]
    busy: frozenset[str]  # rows with a status (or a latest*Update status) that is not final


def _statuses(value: Any) -> Iterable[Any]:
    """Every `status` value anywhere in a resource body (its latest*Update records included)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "status":
                yield item
            else:
                yield from _statuses(item)
    elif isinstance(value, list):
        for item in value:
            yield from _statuses(item)


class Snapshots:
    """Read-only views of the server's metadata database."""

    def __init__(self, db_url: str) -> None:
        self.engine = read_only(create_engine(db_url))
        self.kinds = list(resources.KIND_LABELS)

    def take(self, arns: Iterable[str], with_events: bool) -> Snapshot:
        rows: dict[str, Row] = {}
        busy: set[str] = set()
        with self.engine.connect() as conn:
            for res in resources.children(conn, kind=self.kinds):
                body = json.dumps(res.body, sort_keys=True)
                rows[res.arn] = (res.kind, res.status, res.updated_at, body, res.dataset_group_arn, res.parent_arn)
                if any(s not in FINAL for s in [res.status, *_statuses(res.body)]):
                    busy.add(res.arn)
            tags = {arn: tuple((t["tag_key"], t["tag_value"]) for t in resources.get_tags(conn, arn))
                    for arn in sorted(set(arns))}
            parts: dict[str, tuple[str, ...]] = {}
            if with_events:
                parts = {arn: tuple(dataset_parts.part_keys(conn, arn))
                         for arn, row in rows.items() if row[0] == "dataset"}
        counts: dict[str, int] = {}
        if with_events:
            partitions = [arn for arn, row in rows.items() if row[0] in ("dataset_group", "dataset")]
            counts = {arn: events.count(self.engine, arn) for arn in partitions}
        return Snapshot(rows, tags, counts, parts, frozenset(busy))

    def close(self) -> None:
        self.engine.dispose()


def unexplained_changes(before: Snapshot, after: Snapshot) -> list[str]:
    """What changed between two snapshots that background work does not explain (empty: nothing changed)."""
    busy = before.busy | after.busy
    # Background work touches more than the busy row: a finished training updates its solution and moves the
    # campaigns that follow $LATEST, a finished import its dataset, a delete erases children and events. So
    # everything in a dataset group with busy work, and the parents and children of busy rows, may change.
    groups = {row[4] or arn for snap in (before, after) for arn, row in snap.rows.items() if arn in busy}
    related = set(busy) | groups
    for snap in (before, after):
        for arn, row in snap.rows.items():
            if row[4] in groups or (arn in busy and row[5]) or row[5] in busy:
                related.add(arn)
                if row[5]:
                    related.add(row[5])
    changes = []
    for arn in sorted(set(before.rows) | set(after.rows)):
        if arn in related:
            continue
        old, new = before.rows.get(arn), after.rows.get(arn)
        if old is None:
            changes.append(f"{arn} appeared ({new[1] if new else ''})")
        elif new is None:
            changes.append(f"{arn} disappeared (was {old[1]})")
        elif old != new:
            what = "status" if old[1] != new[1] else "body" if old[3] != new[3] else "updated_at"
            changes.append(f"{arn} changed its {what}: {old[1]} {old[3][:300]} -> {new[1]} {new[3][:300]}")
    for arn in sorted(set(before.tags) & set(after.tags)):
        if before.tags[arn] != after.tags[arn] and arn not in related:
            changes.append(f"tags of {arn} changed: {before.tags[arn]} -> {after.tags[arn]}")
    for name, old_map, new_map in (("events in", before.event_counts, after.event_counts),
                                   ("dataset parts of", before.parts, after.parts)):
        for arn in sorted(set(old_map) & set(new_map)):
            if old_map[arn] != new_map[arn] and arn not in related:
                changes.append(f"{name} {arn} changed: {old_map[arn]} -> {new_map[arn]}")
    return changes


def db_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'tastemaker.db').resolve()}"


def fake_arn(kind: str, name: str) -> str:
    return f"{ACCOUNT_PREFIX}{ARN_WORDS.get(kind, kind)}/{name}"


__all__ = ["ARN_KINDS", "DESTRUCTIVE_PREFIXES", "FINAL", "Snapshot", "Snapshots", "World", "db_url", "fake_arn",
           "seed", "unexplained_changes"]
