"""The batch jobs, dataset exports, data deletions and metric attribution page of a dataset group.

Batch inference and batch segment jobs are listed per ACTIVE solution version (ListBatch*Jobs, Describe*),
with the progress the job records on its row (lines answered and failed) and, for a finished job whose
output folder is local and inside the import roots, the first lines of its first `.out` file. Dataset export
jobs (per dataset) show the rows written and, for a local folder, the part files and their first lines; data
deletion jobs show the records removed so far (recorded by the job per step) and numDeleted at the end. Both
are created here: an export of one dataset (BULK, PUT or ALL) to a folder, a deletion of the users in a CSV of
USER_IDs at a location, or of user ids typed into the form (written as such a CSV under
DATA_DIR/imports/console/deletions/, an import root, once the key is known to be allowed to create the job).
The group's metric attribution is shown with its metrics and its attributed figures as tables and charts
over a span the page's `span` parameter picks (console.attribution.SPANS) and can be created (one metric) or deleted. Every change is the key's own
Create*/Delete* call; a refused or invalid one is shown at its form with what was typed kept.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tastemaker.api.app import Api
from tastemaker.console.attribution import DEFAULT_SPAN, SPANS, figures
from tastemaker.console.pages import PAGE, Ctx, back, busy, list_all
from tastemaker.errors import InvalidInputException, TastemakerError
from tastemaker.store import resources

# (operation suffix, list field, ARN key, describe field) of the batch job kinds
BATCH_KINDS = (("BatchInferenceJob", "batchInferenceJobs", "batchInferenceJobArn", "batchInferenceJob"),
               ("BatchSegmentJob", "batchSegmentJobs", "batchSegmentJobArn", "batchSegmentJob"))
RESULT_LINES = 5  # first lines of a finished batch job's (or export's) local output shown
ROLE = "arn:aws:iam::000000000000:role/tastemaker-console"
MAX_TYPED_USERS = 10_000  # user ids typed into the deletion form (more: give a CSV's location)


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
    exports = []
    for dataset in datasets:
        for job in await list_all(call, "ListDatasetExportJobs", "datasetExportJobs",
                                  {"datasetArn": dataset["datasetArn"]}, limit=PAGE):
            described = (await call("DescribeDatasetExportJob", {
                "datasetExportJobArn": job["datasetExportJobArn"]}))["datasetExportJob"]
            extra = await run_in_threadpool(export_extra, ctx.console.api, job["datasetExportJobArn"])
            exports.append({**described, "datasetType": dataset["datasetType"], **extra})
    deletions = []
    for job in await list_all(call, "ListDataDeletionJobs", "dataDeletionJobs", {"datasetGroupArn": arn},
                              limit=PAGE):
        described = (await call("DescribeDataDeletionJob", {
            "dataDeletionJobArn": job["dataDeletionJobArn"]}))["dataDeletionJob"]
        deletions.append({**described, **await run_in_threadpool(deletion_extra, ctx.console.api,
                                                                 job["dataDeletionJobArn"])})
    attributions = []
    span = request.query_params.get("span", DEFAULT_SPAN)
    if span not in SPANS:
        span = DEFAULT_SPAN
    for found in await list_all(call, "ListMetricAttributions", "metricAttributions", {"datasetGroupArn": arn}):
        described = (await call("DescribeMetricAttribution", {
            "metricAttributionArn": found["metricAttributionArn"]}))["metricAttribution"]
        metrics = (await call("ListMetricAttributionMetrics", {
            "metricAttributionArn": found["metricAttributionArn"]})).get("metrics", [])
        shown = await run_in_threadpool(figures, ctx.console.api, found["metricAttributionArn"], span)
        attributions.append({**described, "metrics": metrics, "figures": shown["entries"], "arms": shown["arms"],
                             "charts": shown["charts"]})
    filters = [f for f in (await call("ListFilters", {"datasetGroupArn": arn, "maxResults": PAGE}))["Filters"]
               if f.get("status") == "ACTIVE"]
    everything = [*batch, *exports, *deletions, *attributions]
    return ctx.render("jobs.html", status=400 if error else 200, group=group, versions=versions, batch=batch,
                      datasets=datasets, exports=exports, deletions=deletions, attributions=attributions,
                      filters=filters, error=error, form=form or {}, span=span, spans=SPANS, refresh=not error and any(
                          busy(j.get("status")) for j in everything))


async def change_jobs(request: Request, ctx: Ctx) -> Response:
    form: dict[str, str] = request.state.form
    arn = request.query_params.get("arn", "")
    action = form.get("action", "")
    role = ROLE
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
        elif action == "export":
            await ctx.caller.call("CreateDatasetExportJob", {
                "jobName": form.get("jobName", "").strip(), "datasetArn": form.get("datasetArn"),
                "ingestionMode": form.get("ingestionMode") or "PUT", "roleArn": role,
                "jobOutput": {"s3DataDestination": {"path": form.get("outputPath", "").strip()}}})
        elif action == "deletion":
            await create_deletion(ctx, arn, form)
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


async def create_deletion(ctx: Ctx, group: str, form: dict[str, str]) -> None:
    """CreateDataDeletionJob for a CSV of USER_IDs at a location, or for the user ids typed into the form
    (written as that CSV under DATA_DIR/imports/console/deletions/ once the key may create the job)."""
    name, location = form.get("jobName", "").strip(), form.get("dataLocation", "").strip()
    typed = [u.strip() for u in form.get("userIds", "").replace(",", "\n").splitlines() if u.strip()]
    if location and typed:
        raise InvalidInputException("Give either the location of a CSV of USER_IDs or user ids typed in, not both.")
    if not location and not typed:
        raise InvalidInputException("Give the users to delete: the location of a CSV with a USER_ID column "
                                    "(s3://bucket/users.csv or a file in an import root), or user ids, one a line.")
    params: dict[str, Any] = {"jobName": name, "datasetGroupArn": group, "roleArn": ROLE,
                              "dataSource": {"dataLocation": location}}
    written: Path | None = None
    if typed:
        if len(typed) > MAX_TYPED_USERS:
            raise InvalidInputException(f"{len(typed):,} user ids were typed; at most {MAX_TYPED_USERS:,} here: "
                                        "give the location of a CSV of USER_IDs instead.")
        if any('"' in user or "\r" in user for user in typed):
            raise InvalidInputException("A user id typed here may not contain a double quote.")
        if not ctx.caller.allowed("CreateDataDeletionJob", params):
            await ctx.caller.call("CreateDataDeletionJob", params)  # refused: the key's error, audited
        folder = ctx.console.api.services.settings.imports_dir / "console" / "deletions"
        folder.mkdir(parents=True, exist_ok=True)
        written = folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}.csv"
        written.write_text("USER_ID\n" + "".join(f'"{user}"\n' for user in typed))
        params["dataSource"] = {"dataLocation": str(written)}
    try:
        await ctx.caller.call("CreateDataDeletionJob", params)
    except TastemakerError:
        if written is not None:
            written.unlink(missing_ok=True)
        raise


def _first_lines(api: Api, folder: str, pattern: str) -> dict[str, Any]:
    """For a local output folder inside the import roots (what the job was allowed to write): its files matching
    `pattern` and the first lines of the first one."""
    out: dict[str, Any] = {"results": [], "files": []}
    if not folder or folder.startswith("s3://"):
        return out
    roots = [root.resolve() for root in api.services.settings.effective_import_roots]
    path = Path(folder).resolve()
    if path.is_dir() and any(path.is_relative_to(root) for root in roots):
        found = sorted(path.glob(pattern))
        out["files"] = [f.name for f in found[:PAGE]]
        for result in found[:1]:
            with result.open(errors="replace") as fh:
                out["results"] = [line.rstrip("\n")[:400] for _, line in zip(range(RESULT_LINES), fh, strict=False)]
            out["resultFile"] = str(result)
    return out


def export_extra(api: Api, arn: str) -> dict[str, Any]:
    """An export's rows written so far and part files published (recorded after each file), its rows and seconds
    when it finishes, and its local part files."""
    with api.services.read_engine.connect() as conn:
        body = resources.get(conn, arn).body
    folder = ((body.get("job_output") or {}).get("s3_data_destination") or {}).get("path") or ""
    progress = body.get("progress") or {}
    return {"rowCount": body.get("row_count"), "seconds": body.get("execution_seconds"),
            "rowsWritten": progress.get("lines_processed"), "filesDone": progress.get("files_done"),
            "filesTotal": progress.get("files_total"),
            "folder": folder + str(body.get("job_name", "")) + "/",
            **_first_lines(api, folder + str(body.get("job_name", "")), "part-*.csv")}


def deletion_extra(api: Api, arn: str) -> dict[str, Any]:
    """The records a data deletion has removed so far (the job records them after each step)."""
    with api.services.read_engine.connect() as conn:
        body = resources.get(conn, arn).body
    return {"deletedSoFar": sum(int(v) for v in (body.get("deleted_so_far") or {}).values())}


def job_extra(api: Api, arn: str) -> dict[str, Any]:
    """A batch job's recorded progress, and the first lines of its results when they are a local folder inside
    the import roots (what the job was allowed to write)."""
    with api.services.read_engine.connect() as conn:
        body = resources.get(conn, arn).body
    progress = body.get("progress") or {}
    folder = ((body.get("job_output") or {}).get("s3_data_destination") or {}).get("path") or ""
    return {"linesProcessed": progress.get("lines_processed"), "linesFailed": progress.get("lines_failed"),
            **_first_lines(api, folder, "*.out")}
