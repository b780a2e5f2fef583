"""Data deletion jobs: CreateDataDeletionJob, DescribeDataDeletionJob, ListDataDeletionJobs (newest first).

A job names a CSV of USER_IDs (a file or folder, at most 100 MB); it starts PENDING, at most
MAX_PENDING_PER_GROUP per dataset group, and a worker removes the users' data (tastemaker.jobs.data_deletion).
"""

from __future__ import annotations

from typing import Any

from tastemaker.arns import build_arn
from tastemaker.control.common import create_with_tags, describe, listing, name_key
from tastemaker.control.context import RequestContext
from tastemaker.control.dataset_groups import get_active_group
from tastemaker.control.registry import operation
from tastemaker.data.sources import check_data_location
from tastemaker.errors import InvalidInputException, LimitExceededException
from tastemaker.store import queue, resources
from tastemaker.store.status import Status

KIND = "data_deletion_job"
MAX_PENDING_PER_GROUP = 5


@operation("CreateDataDeletionJob")
def create_data_deletion_job(ctx: RequestContext, *, job_name: str, dataset_group_arn: str,
                             data_source: dict[str, Any], role_arn: str,
                             tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    location = (data_source or {}).get("data_location")
    if not location:
        raise InvalidInputException("dataSource.dataLocation is required: an s3:// CSV file or folder of USER_IDs.")
    check_data_location(location, ctx.services.settings.effective_import_roots)
    arn = build_arn(KIND, ctx.region, ctx.account, job_name)
    with ctx.engine.begin() as conn:
        get_active_group(conn, dataset_group_arn, "delete data from the dataset group")
        waiting = [j for j in resources.children(conn, kind=KIND, dataset_group_arn=dataset_group_arn)
                   if j.status in (Status.PENDING, Status.IN_PROGRESS)]
        if len(waiting) >= MAX_PENDING_PER_GROUP:
            raise LimitExceededException(
                f"Dataset group {dataset_group_arn} already has {len(waiting)} data deletion jobs PENDING or "
                f"IN_PROGRESS (the limit is {MAX_PENDING_PER_GROUP}); wait for one to finish.")
        body = {"job_name": job_name, "data_deletion_job_arn": arn, "dataset_group_arn": dataset_group_arn,
                "data_source": {"data_location": location}, "role_arn": role_arn}
        create_with_tags(conn, tags, arn=arn, kind=KIND, body=body, status=Status.PENDING,
                         name_key=name_key(ctx, job_name), dataset_group_arn=dataset_group_arn,
                         parent_arn=dataset_group_arn)
        queue.enqueue(conn, queue.JobKind.DATA_DELETION, arn)
    return {"data_deletion_job_arn": arn}


@operation("DescribeDataDeletionJob")
def describe_data_deletion_job(ctx: RequestContext, *, data_deletion_job_arn: str) -> dict[str, Any]:
    return describe(ctx, KIND, "data_deletion_job", data_deletion_job_arn)


@operation("ListDataDeletionJobs")
def list_data_deletion_jobs(ctx: RequestContext, *, dataset_group_arn: str | None = None,
                            next_token: str | None = None, max_results: int | None = None) -> dict[str, Any]:
    # The model declares no ResourceNotFoundException: an unknown group has no jobs (an empty page).
    with ctx.read_engine.connect() as conn:
        items, token = resources.page(conn, kind=KIND, next_token=next_token, max_results=max_results,
                                      dataset_group_arn=dataset_group_arn, newest_first=True)
    return listing(items, token, "data_deletion_jobs")
