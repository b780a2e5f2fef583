"""Typed, read-only views of resource rows: one frozen dataclass per resource kind.

A resource row keeps its Describe document as an untyped ``body`` dict (the wire is driven from it, and writes go
through ``resources.update(changes={...})``). Code that *reads* a field goes through these views instead of
``res.body["..."]``, so a misspelt field is a type error (mypy) rather than a KeyError at run time.

Mechanism: each view declares the body fields code reads as dataclass fields named exactly like the body keys.
``View.of(resource)`` checks the row's kind and fills every field from ``body``: a key that is absent or None takes
the field's default. A field without a default is one every row of that kind has from its Create; should it be
absent, reading it raises KeyError, as the ``body[...]`` look-up it replaces did (building the view does not, so
code that never reads it behaves as before). The row itself stays reachable as ``.resource``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

import sqlalchemy as sa

from tastemaker.store import resources
from tastemaker.store.resources import Resource

R = TypeVar("R", bound="Record")
_ABSENT: Any = object()  # a required field missing from the body: reading it raises KeyError


@dataclass(frozen=True)
class Record:
    """The fields every view shares; subclasses add the body fields of their kind."""

    KIND: ClassVar[str] = ""
    resource: Resource = field(repr=False, compare=False)

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if value is _ABSENT:
            raise KeyError(name)
        return value

    @property
    def arn(self) -> str:
        return self.resource.arn

    @property
    def status(self) -> str | None:
        return self.resource.status

    @classmethod
    def of(cls, res: Resource) -> Self:
        """The typed view of `res`, which must be a row of this view's kind."""
        if res.kind != cls.KIND:
            raise ValueError(f"{res.arn} is a {res.kind}, not a {cls.KIND}")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "resource":
                continue
            value = res.body.get(f.name)
            if value is None:
                if f.default is not dataclasses.MISSING:
                    value = f.default
                elif f.default_factory is not dataclasses.MISSING:
                    value = f.default_factory()
                else:
                    value = _ABSENT
            values[f.name] = value
        return cls(resource=res, **values)


def load(conn: sa.Connection, arn: str, view: type[R], *, lock: bool = False) -> R:
    """The typed view of the resource with this ARN; ResourceNotFoundException when none of that kind exists."""
    return view.of(resources.get(conn, arn, view.KIND, lock=lock))


def _recipe_name(trained_recipe: str | None, recipe_arn: str | None) -> str:
    return trained_recipe or (recipe_arn or "").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DatasetGroup(Record):
    KIND: ClassVar[str] = "dataset_group"
    name: str
    domain: str | None = None


@dataclass(frozen=True)
class Schema(Record):
    KIND: ClassVar[str] = "schema"
    schema: str
    domain: str | None = None


@dataclass(frozen=True)
class Dataset(Record):
    KIND: ClassVar[str] = "dataset"
    dataset_type: str  # upper case, e.g. "ACTION_INTERACTIONS"
    schema_arn: str
    storage_id: str
    tracking_id: str | None = None  # Action interactions datasets only
    data_version: str = ""  # bumped by every write, so readers re-read the data


@dataclass(frozen=True)
class DatasetImportJob(Record):
    KIND: ClassVar[str] = "dataset_import_job"
    dataset_arn: str
    data_source: dict[str, Any]
    import_mode: str = "FULL"
    # ours, not on the wire: rows and bytes read so far by the running claim (tastemaker.jobs.tasks.ImportProgress)
    progress: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetExportJob(Record):
    KIND: ClassVar[str] = "dataset_export_job"
    job_name: str
    dataset_arn: str
    job_output: dict[str, Any]
    ingestion_mode: str = "PUT"


@dataclass(frozen=True)
class DataDeletionJob(Record):
    KIND: ClassVar[str] = "data_deletion_job"
    dataset_group_arn: str
    data_source: dict[str, Any]
    deleted_so_far: dict[str, int] = field(default_factory=dict)  # what earlier claims committed, per step


@dataclass(frozen=True)
class _BatchJob(Record):
    """What batch inference and batch segment jobs share: a trained version, its input and output locations."""

    solution_version_arn: str
    job_input: dict[str, Any]
    job_output: dict[str, Any]
    num_results: int = 25
    filter_arn: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)  # ours, not on the wire (tastemaker.monitoring.progress)

    @property
    def input_path(self) -> str:
        return str(self.job_input["s3_data_source"]["path"])

    @property
    def output_path(self) -> str:
        return str(self.job_output["s3_data_destination"]["path"])


@dataclass(frozen=True)
class BatchInferenceJob(_BatchJob):
    KIND: ClassVar[str] = "batch_inference_job"
    batch_inference_job_mode: str = "BATCH_INFERENCE"
    batch_inference_job_config: dict[str, Any] = field(default_factory=dict)
    theme_generation_config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchSegmentJob(_BatchJob):
    KIND: ClassVar[str] = "batch_segment_job"


@dataclass(frozen=True)
class Solution(Record):
    KIND: ClassVar[str] = "solution"
    name: str
    recipe_arn: str | None = None
    solution_config: dict[str, Any] = field(default_factory=dict)
    perform_auto_training: bool = True
    perform_incremental_update: bool | None = None


@dataclass(frozen=True)
class SolutionVersion(Record):
    KIND: ClassVar[str] = "solution_version"
    solution_arn: str
    storage_id: str
    model_prefix: str | None = None
    trained_recipe: str | None = None
    recipe_arn: str | None = None
    training_mode: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def recipe_name(self) -> str:
        """The recipe the model was trained with (its short name), else the one named by the solution."""
        return _recipe_name(self.trained_recipe, self.recipe_arn)


@dataclass(frozen=True)
class Campaign(Record):
    KIND: ClassVar[str] = "campaign"
    solution_version_arn: str
    campaign_config: dict[str, Any] = field(default_factory=dict)
    follows_solution_arn: str | None = None  # set when the campaign was given a "$LATEST"-style solution ARN
    serving_version_arn: str | None = None  # the version serving while an update loads another
    min_provisioned_tps: int = 1
    latest_campaign_update: dict[str, Any] = field(default_factory=dict)
    serving_stats: dict[str, Any] = field(default_factory=dict)  # recorded when its model was loaded


@dataclass(frozen=True)
class Recommender(Record):
    KIND: ClassVar[str] = "recommender"
    recipe_arn: str
    storage_id: str
    model_prefix: str  # the model generation it serves, under its storage_id
    recommender_config: dict[str, Any] = field(default_factory=dict)
    latest_recommender_update: dict[str, Any] = field(default_factory=dict)
    serving_stats: dict[str, Any] = field(default_factory=dict)  # recorded when its model was loaded


@dataclass(frozen=True)
class Filter(Record):
    KIND: ClassVar[str] = "filter"
    filter_expression: str
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EventTracker(Record):
    KIND: ClassVar[str] = "event_tracker"
    tracking_id: str
    state_generation: str = ""  # bumped by a data deletion job


@dataclass(frozen=True)
class MetricAttribution(Record):
    KIND: ClassVar[str] = "metric_attribution"
    metrics: list[dict[str, Any]] = field(default_factory=list)
    metrics_output_config: dict[str, Any] = field(default_factory=dict)
