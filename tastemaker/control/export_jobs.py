"""Dataset export jobs: CreateDatasetExportJob, DescribeDatasetExportJob, ListDatasetExportJobs."""

from __future__ import annotations

from typing import Any

from tastemaker.arns import build_arn
from tastemaker.control.common import (
    create_with_tags,
    describe,
    list_page,
    locked_in,
    name_key,
)
from tastemaker.control.context import RequestContext
from tastemaker.control.registry import operation
from tastemaker.data.sources import check_data_location
from tastemaker.errors import InvalidInputException, LimitExceededException
from tastemaker.store import queue, resources
from tastemaker.store.status import BUSY, Status

KIND = "dataset_export_job"
MAX_RUNNING_EXPORTS = 5
INGESTION_MODES = ("BULK", "PUT", "ALL")


@operation("CreateDatasetExportJob")
def create_dataset_export_job(ctx: RequestContext, *, job_name: str, dataset_arn: str, role_arn: str,
                              job_output: dict[str, Any], ingestion_mode: str | None = None,
                              tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    mode = ingestion_mode or "PUT"
    if mode not in INGESTION_MODES:
        raise InvalidInputException(f"ingestionMode must be BULK, PUT or ALL; got {mode}.")
    path = ((job_output or {}).get("s3_data_destination") or {}).get("path") or ""
    if not path:
        raise InvalidInputException("jobOutput.s3DataDestination.path is required: an s3:// folder.")
    check_data_location(path, ctx.services.settings.effective_import_roots)
    folder = path if path.endswith("/") else path + "/"
    arn = build_arn(KIND, ctx.region, ctx.account, job_name)
    with ctx.engine.begin() as conn:
        dataset = locked_in(conn, dataset_arn, "dataset", (Status.ACTIVE,), "export the dataset")
        running = resources.count(conn, KIND, BUSY)
        if running >= MAX_RUNNING_EXPORTS:
            raise LimitExceededException(f"{running} dataset export jobs are already CREATE PENDING or CREATE "
                                         f"IN_PROGRESS (the limit is {MAX_RUNNING_EXPORTS}); wait for one to finish.")
        body = {"job_name": job_name, "dataset_export_job_arn": arn, "dataset_arn": dataset_arn,
                "ingestion_mode": mode, "role_arn": role_arn,
                "job_output": {"s3_data_destination": {**job_output["s3_data_destination"], "path": folder}}}
        create_with_tags(conn, tags, arn=arn, kind=KIND, body=body, status=Status.CREATE_PENDING,
                         name_key=name_key(ctx, job_name), dataset_group_arn=dataset.dataset_group_arn,
                         parent_arn=dataset_arn)
        queue.enqueue(conn, queue.JobKind.DATASET_EXPORT, arn)
    return {"dataset_export_job_arn": arn}


@operation("DescribeDatasetExportJob")
def describe_dataset_export_job(ctx: RequestContext, *, dataset_export_job_arn: str) -> dict[str, Any]:
    return describe(ctx, KIND, "dataset_export_job", dataset_export_job_arn)


@operation("ListDatasetExportJobs")
def list_dataset_export_jobs(ctx: RequestContext, *, dataset_arn: str | None = None, next_token: str | None = None,
                             max_results: int | None = None) -> dict[str, Any]:
    return list_page(ctx, KIND, "dataset_export_jobs", next_token=next_token, max_results=max_results,
                     parent=("dataset", dataset_arn))
