"""Dataset import jobs: CreateDatasetImportJob, DescribeDatasetImportJob, ListDatasetImportJobs."""

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

KIND = "dataset_import_job"
MAX_RUNNING_IMPORTS = 5


def check_location(ctx: RequestContext, location: str) -> None:
    """Refuse at the call what the job could never read: http(s):// URLs, hidden `..`, paths outside the
    import roots (tastemaker.data.sources.check_data_location); whether S3 data exists is the job's to find."""
    check_data_location(location, ctx.services.settings.effective_import_roots)


@operation("CreateDatasetImportJob")
def create_dataset_import_job(ctx: RequestContext, *, job_name: str, dataset_arn: str, data_source: dict[str, Any],
                              role_arn: str | None = None, tags: list[dict[str, str]] | None = None,
                              import_mode: str | None = None,
                              publish_attribution_metrics_to_s3: bool | None = None) -> dict[str, Any]:
    location = (data_source or {}).get("data_location")
    if not location:
        raise InvalidInputException("dataSource.dataLocation is required: an s3:// URL or a local path.")
    check_location(ctx, location)
    arn = build_arn(KIND, ctx.region, ctx.account, job_name)
    with ctx.engine.begin() as conn:
        dataset = locked_in(conn, dataset_arn, "dataset", (Status.ACTIVE,), "import into the dataset")
        running = resources.count(conn, KIND, BUSY, region=ctx.region)
        if running >= MAX_RUNNING_IMPORTS:
            raise LimitExceededException(
                f"More than {MAX_RUNNING_IMPORTS} resources with PENDING or IN_PROGRESS status.")
        body = {"job_name": job_name, "dataset_import_job_arn": arn, "dataset_arn": dataset_arn,
                "data_source": {"data_location": location}, "role_arn": role_arn,
                "import_mode": import_mode or "FULL",
                "publish_attribution_metrics_to_s3": bool(publish_attribution_metrics_to_s3)}
        create_with_tags(conn, tags, arn=arn, kind=KIND, body=body, status=Status.CREATE_PENDING,
                         name_key=name_key(ctx, job_name), dataset_group_arn=dataset.dataset_group_arn,
                         parent_arn=dataset_arn)
        queue.enqueue(conn, queue.JobKind.IMPORT, arn)
    return {"dataset_import_job_arn": arn}


@operation("DescribeDatasetImportJob")
def describe_dataset_import_job(ctx: RequestContext, *, dataset_import_job_arn: str) -> dict[str, Any]:
    return describe(ctx, KIND, "dataset_import_job", dataset_import_job_arn)


@operation("ListDatasetImportJobs")
def list_dataset_import_jobs(ctx: RequestContext, *, dataset_arn: str | None = None, next_token: str | None = None,
                             max_results: int | None = None) -> dict[str, Any]:
    return list_page(ctx, KIND, "dataset_import_jobs", next_token=next_token, max_results=max_results,
                     parent=("dataset", dataset_arn))
