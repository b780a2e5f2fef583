"""Datasets: CreateDataset, DescribeDataset, ListDatasets, UpdateDataset, DeleteDataset."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from tastemaker.arns import build_arn
from tastemaker.control.common import (
    DELETABLE,
    activate_now,
    create_with_tags,
    describe,
    list_page,
    locked_in,
    name_key,
    schedule,
    storage_id,
)
from tastemaker.control.context import RequestContext
from tastemaker.control.dataset_groups import get_active_group
from tastemaker.control.registry import operation
from tastemaker.control.schemas import load_schema
from tastemaker.data.schemas import check_schema_for_dataset, normalize_dataset_type
from tastemaker.errors import InvalidInputException, ResourceAlreadyExistsException, ResourceInUseException
from tastemaker.store import queue, resources
from tastemaker.store.records import Dataset, DatasetGroup, Schema
from tastemaker.store.status import BUSY, Status

KIND = "dataset"


def _check_domain(group: resources.Resource, schema_res: resources.Resource) -> None:
    group_domain, schema_domain = DatasetGroup.of(group).domain, Schema.of(schema_res).domain
    if group_domain != schema_domain:
        raise InvalidInputException(
            f"Schema {schema_res.arn} has domain {schema_domain or 'none (custom)'} but dataset group "
            f"{group.arn} has domain {group_domain or 'none (custom)'}; they must match.")


@operation("CreateDataset")
def create_dataset(ctx: RequestContext, *, name: str, schema_arn: str, dataset_group_arn: str, dataset_type: str,
                   tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    dataset_type = normalize_dataset_type(dataset_type)
    with ctx.engine.begin() as conn:
        group = get_active_group(conn, dataset_group_arn, "create a dataset")
        schema_res, schema = load_schema(conn, schema_arn)
        _check_domain(group, schema_res)
        if DatasetGroup.of(group).domain and dataset_type in ("Actions", "Action_Interactions"):
            raise InvalidInputException(f"{dataset_type} datasets cannot be created in a domain dataset group.")
        check_schema_for_dataset(schema, dataset_type, DatasetGroup.of(group).domain)
        arn = build_arn(KIND, ctx.region, ctx.account, DatasetGroup.of(group).name, dataset_type.upper())
        if resources.find(conn, arn, KIND):
            raise ResourceAlreadyExistsException(
                f"Dataset group {dataset_group_arn} already has a {dataset_type} dataset ({arn}).")
        body = {"name": name, "dataset_arn": arn, "dataset_group_arn": dataset_group_arn,
                "dataset_type": dataset_type.upper(), "schema_arn": schema_arn, "storage_id": storage_id()}
        if dataset_type == "Action_Interactions":  # its own trackingId for PutActionInteractions (Personalize)
            body["tracking_id"] = str(uuid.uuid4())
        create_with_tags(conn, tags, arn=arn, kind=KIND, body=body, status=Status.CREATE_PENDING,
                         name_key=name_key(ctx, name), dataset_group_arn=dataset_group_arn,
                         parent_arn=dataset_group_arn)
        activate_now(conn, arn)
    return {"dataset_arn": arn}


@operation("DescribeDataset")
def describe_dataset(ctx: RequestContext, *, dataset_arn: str) -> dict[str, Any]:
    return describe(ctx, KIND, "dataset", dataset_arn)


@operation("ListDatasets")
def list_datasets(ctx: RequestContext, *, dataset_group_arn: str | None = None, next_token: str | None = None,
                  max_results: int | None = None) -> dict[str, Any]:
    return list_page(ctx, KIND, "datasets", next_token=next_token, max_results=max_results,
                     parent=("dataset_group", dataset_group_arn), by_group=True)


@operation("UpdateDataset")
def update_dataset(ctx: RequestContext, *, dataset_arn: str, schema_arn: str) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        dataset = locked_in(conn, dataset_arn, KIND, (Status.ACTIVE,), "update the dataset")
        group = resources.get(conn, dataset.dataset_group_arn or "", "dataset_group")
        schema_res, schema = load_schema(conn, schema_arn)
        _check_domain(group, schema_res)
        dataset_type = normalize_dataset_type(Dataset.of(dataset).dataset_type)
        check_schema_for_dataset(schema, dataset_type, DatasetGroup.of(group).domain)
        ts = resources.now()
        update = {"schema_arn": schema_arn, "status": Status.ACTIVE, "creation_date_time": ts, "last_updated_date_time": ts}
        resources.update(conn, dataset_arn, changes={"schema_arn": schema_arn, "latest_dataset_update": update})
    return {"dataset_arn": dataset_arn}


@operation("DeleteDataset")
def delete_dataset(ctx: RequestContext, *, dataset_arn: str) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        dataset = locked_in(conn, dataset_arn, KIND, DELETABLE, "delete the dataset")
        busy = [j for j in resources.children(conn, kind="dataset_import_job", parent_arn=dataset_arn)
                if j.status in BUSY]
        if busy:
            raise ResourceInUseException(
                f"Cannot delete dataset {dataset_arn}: import job {busy[0].arn} is {busy[0].status}.")
        versions = [v for v in resources.children(conn, kind="solution_version",
                                                  dataset_group_arn=dataset.dataset_group_arn)
                    if v.status in BUSY]
        if versions:
            raise ResourceInUseException(
                f"Cannot delete dataset {dataset_arn}: solution version {versions[0].arn} is training on it.")
        schedule(conn, dataset_arn, Status.DELETE_PENDING, queue.JobKind.DELETE)
    return {}


def dataset_of_type(conn: sa.Connection, dataset_group_arn: str, dataset_type: str) -> resources.Resource | None:
    for ds in resources.children(conn, kind=KIND, dataset_group_arn=dataset_group_arn):
        if Dataset.of(ds).dataset_type == dataset_type.upper():
            return ds
    return None

