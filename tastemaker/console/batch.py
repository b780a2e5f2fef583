"""The batch jobs and metric attribution page of a dataset group.

Batch inference and batch segment jobs are listed per ACTIVE solution version (ListBatch*Jobs, Describe*),
with the progress the job records on its row (lines answered and failed) and, for a finished job whose
output folder is local and inside the import roots, the first lines of its first `.out` file. Dataset
exports and data deletions are listed; the group's metric attribution is shown with its metrics and can be
created (one metric) or deleted. Every change is the key's own Create*/Delete* call; a refused or invalid one
is shown at its form with what was typed kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tastemaker.api.app import Api
from tastemaker.console.pages import PAGE, Ctx, back, busy, list_all
from tastemaker.errors import TastemakerError
from tastemaker.jobs import impact
from tastemaker.store import resources

# (operation suffix, list field, ARN key, describe field) of the batch job kinds
BATCH_KINDS = (("BatchInferenceJob", "batchInferenceJobs", "batchInferenceJobArn", "batchInferenceJob"),
               ("BatchSegmentJob", "batchSegmentJobs", "batchSegmentJobArn", "batchSegmentJob"))
RESULT_LINES = 5  # first lines of a finished batch job's local output shown


async def jobs(request: Request, ctx: Ctx, error: tuple[str, str] | None = None,
               form: dict[str, str] | None = None) -> Response:
    """A group's batch inference and segment jobs (per trained version), dataset exports, data deletions
    and its metric attribution: status, progress (lines answered, recorded by the job), failure reason and,
    for finished batch jobs whose output is a local folder, the first lines of the results."""
    arn = request.query_params.get("arn", "")
    call = ctx.caller.call
    try:
        group = (await call("DescribeDatasetGroup", {"datasetGroupArn": arn}))["datasetGroup"]
    except TastemakerError as exc:
        return ctx.render("error.html", status=404, error=exc.message)
    versions: list[dict[str, Any]] = []
    for solution in await list_all(call, "ListSolutions", "solutions", {"datasetGroupArn": arn}):
        for version in await list_all(call, "ListSolutionVersions", "solutionVersions",
                                  {"solutionArn": solution["solutionArn"]}, limit=20):
            if version.get("status") == "ACTIVE":
                versions.append({**version, "solutionName": solution["name"]})
    batch: list[dict[str, Any]] = []
    for version in versions:
        for op, field, key, kind in BATCH_KINDS:
            for job in await list_all(call, f"List{op}s", field, {"solutionVersionArn": version["solutionVersionArn"]},
                                  limit=PAGE):
                job_arn: str = job[key]
                described = (await call(f"Describe{op}", {key: job_arn}))[kind]
                extra = await run_in_threadpool(job_extra, ctx.console.api, job_arn)
                batch.append({**described, "arn": job_arn, "kind": op, "solutionName": version["solutionName"],
                              **extra})
    datasets = (await call("ListDatasets", {"datasetGroupArn": arn, "maxResults": PAGE}))["datasets"]
    exports = [job for d in datasets for job in await list_all(
        call, "ListDatasetExportJobs", "datasetExportJobs", {"datasetArn": d["datasetArn"]}, limit=PAGE)]
    deletions = await list_all(call, "ListDataDeletionJobs", "dataDeletionJobs", {"datasetGroupArn": arn}, limit=PAGE)
    attributions = []
    for found in await list_all(call, "ListMetricAttributions", "metricAttributions", {"datasetGroupArn": arn}):
        described = (await call("DescribeMetricAttribution", {
            "metricAttributionArn": found["metricAttributionArn"]}))["metricAttribution"]
        metrics = (await call("ListMetricAttributionMetrics", {
            "metricAttributionArn": found["metricAttributionArn"]})).get("metrics", [])
        entries, arms = await run_in_threadpool(impact_of, ctx.console.api, found["metricAttributionArn"])
        attributions.append({**described, "metrics": metrics, "figures": entries, "arms": arms})
    filters = [f for f in (await call("ListFilters", {"datasetGroupArn": arn, "maxResults": PAGE}))["Filters"]
               if f.get("status") == "ACTIVE"]
    everything = [*batch, *exports, *deletions, *attributions]
    return ctx.render("jobs.html", status=400 if error else 200, group=group, versions=versions, batch=batch,
                      exports=exports, deletions=deletions, attributions=attributions, filters=filters,
                      error=error, form=form or {}, refresh=not error and any(
                          busy(j.get("status")) for j in everything))

async def change_jobs(request: Request, ctx: Ctx) -> Response:
    form: dict[str, str] = request.state.form
    arn = request.query_params.get("arn", "")
    action = form.get("action", "")
    role = "arn:aws:iam::000000000000:role/tastemaker-console"
    try:
        if action in ("inference", "segment"):
            params: dict[str, Any] = {
                "jobName": form.get("jobName", "").strip(), "solutionVersionArn": form.get("solutionVersionArn"),
                "jobInput": {"s3DataSource": {"path": form.get("inputPath", "").strip()}},
                "jobOutput": {"s3DataDestination": {"path": form.get("outputPath", "").strip()}},
                "roleArn": role, "filterArn": form.get("filterArn") or None}
            if form.get("numResults", "").strip():
                params["numResults"] = int(form["numResults"])
            await ctx.caller.call("CreateBatchInferenceJob" if action == "inference" else "CreateBatchSegmentJob",
                                  params)
        elif action == "attribution":
            await ctx.caller.call("CreateMetricAttribution", {
                "name": form.get("name", "").strip(), "datasetGroupArn": arn,
                "metrics": [{"eventType": form.get("eventType", "").strip(),
                             "metricName": form.get("metricName", "").strip(),
                             "expression": form.get("expression", "").strip()}],
                "metricsOutputConfig": {"roleArn": role, **({"s3DataDestination": {
                    "path": form["outputPath"].strip()}} if form.get("outputPath", "").strip() else {})}})
        elif action == "delete-attribution":
            await ctx.caller.call("DeleteMetricAttribution", {"metricAttributionArn": form.get("target")})
        else:
            return await jobs(request, ctx, error=("page", f"Unknown action {action!r}."))
    except ValueError:
        return await jobs(request, ctx, error=(action, "Number of results must be a whole number."),
                               form=form)
    except TastemakerError as exc:
        return await jobs(request, ctx, error=(action, exc.message), form=form)
    return back("/jobs", arn=arn)


def impact_of(api: Api, arn: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The attribution's figures per source (as `tastemaker attribution` prints them) and, for campaigns with a
    comparison arm, each arm's rate with 95% intervals (`tastemaker attribution --arms`)."""
    entries = impact.report(api.services, arn)
    return entries, impact.arm_report(api.services, entries)


def job_extra(api: Api, arn: str) -> dict[str, Any]:
    """A batch job's recorded progress, and the first lines of its results when they are a local folder inside
    the import roots (what the job was allowed to write)."""
    with api.services.read_engine.connect() as conn:
        body = resources.get(conn, arn).body
    progress = body.get("progress") or {}
    out: dict[str, Any] = {"linesProcessed": progress.get("lines_processed"),
                           "linesFailed": progress.get("lines_failed"), "results": []}
    folder = ((body.get("job_output") or {}).get("s3_data_destination") or {}).get("path") or ""
    if folder and not folder.startswith("s3://"):
        roots = [root.resolve() for root in api.services.settings.effective_import_roots]
        path = Path(folder).resolve()
        if path.is_dir() and any(path.is_relative_to(root) for root in roots):
            for result in sorted(path.glob("*.out"))[:1]:
                with result.open(errors="replace") as fh:
                    out["results"] = [line.rstrip("\n")[:400] for _, line in zip(range(RESULT_LINES), fh, strict=False)]
                out["resultFile"] = str(result)
    return out
