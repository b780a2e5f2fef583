"""CSV upload from the browser into a dataset, and what an import job counted (while it runs, and at the end).

The page's upload form sends the chosen file as the raw request body (no multipart: the browser streams the
file, with upload progress), with the session's CSRF token in the X-CSRF-Token header. The file is written to
DATA_DIR/imports/console/ (an import root) as it arrives, then imported by CreateDatasetImportJob for the
signed-in key like any other local file. A key that may not create the import is refused before a byte is
stored; a refused, empty or oversized upload leaves no file behind.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tastemaker.api.app import Api
from tastemaker.console.pages import Ctx, FormTooLarge
from tastemaker.console.sessions import COOKIE, csrf_ok
from tastemaker.errors import TastemakerError
from tastemaker.store import resources
from tastemaker.store.records import DatasetImportJob

if TYPE_CHECKING:
    from tastemaker.console.app import Console

MAX_UPLOAD_BYTES = 1 << 30  # a CSV uploaded from the browser (larger files: import from s3:// or a root)


async def upload(console: Console, request: Request) -> Response:
    """A CSV file sent by the page's upload form as the raw request body (no multipart: the browser
    streams the file), written to DATA_DIR/imports/console/ (an import root) as it arrives, then imported
    by CreateDatasetImportJob like any other local file. The key must be allowed to create the import
    before a byte is stored; the CSRF token travels in the X-CSRF-Token header."""
    session = console.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        return JSONResponse({"message": "Sign in again: the session has ended."}, status_code=401)
    if not csrf_ok(session, request.headers.get("x-csrf-token")):
        return JSONResponse({"message": "The page is stale (CSRF token mismatch): reload it and try again."},
                            status_code=403)
    ctx = Ctx(console, request, session)
    dataset = request.query_params.get("arn", "")
    name = re.sub(r"[^A-Za-z0-9._-]", "_", request.query_params.get("name", "upload.csv"))[-80:] or "upload.csv"
    if not ctx.caller.allowed("CreateDatasetImportJob", {"datasetArn": dataset}):
        return JSONResponse({"message": "This key may not create import jobs for " + dataset + "."},
                            status_code=403)
    try:
        await ctx.caller.call("DescribeDataset", {"datasetArn": dataset})
    except TastemakerError as exc:
        return JSONResponse({"message": exc.message}, status_code=exc.status)
    folder = console.api.services.settings.imports_dir / "console"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}-{name}"
    size = 0
    try:
        with target.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise FormTooLarge()
                out.write(chunk)  # a chunk of at most 64 kB: no thread hop
    except (FormTooLarge, OSError) as exc:
        target.unlink(missing_ok=True)
        reason = (f"The file is larger than {MAX_UPLOAD_BYTES >> 20} MiB: import it from s3:// or an import "
                  "root instead." if isinstance(exc, FormTooLarge) else f"Could not store the upload: {exc}.")
        return JSONResponse({"message": reason}, status_code=413 if isinstance(exc, FormTooLarge) else 500)
    if size == 0:
        target.unlink(missing_ok=True)
        return JSONResponse({"message": "The file is empty: choose a CSV file with a header row."},
                            status_code=400)
    try:
        made = await ctx.caller.call("CreateDatasetImportJob", {
            "jobName": f"console-upload-{int(time.time())}-{secrets.token_hex(2)}", "datasetArn": dataset,
            "dataSource": {"dataLocation": str(target)},
            "roleArn": "arn:aws:iam::000000000000:role/tastemaker-console"})
    except TastemakerError as exc:
        target.unlink(missing_ok=True)
        return JSONResponse({"message": exc.message}, status_code=exc.status)
    return JSONResponse({"datasetImportJobArn": made["datasetImportJobArn"], "bytes": size})


def import_counts(api: Api, arn: str) -> dict[str, Any]:
    """What an import job has counted: rows imported and skipped, and rows/s over its execution time (the
    job records them when it finishes; `tastemaker import-report` prints the same). While it runs: the rows
    read so far, their rate and the share of the source bytes read, as the job last recorded them (every few
    seconds, tastemaker.jobs.tasks.ImportProgress)."""
    with api.services.read_engine.connect() as conn:
        job = DatasetImportJob.of(resources.get(conn, arn, "dataset_import_job"))
    body = job.resource.body
    rows, seconds = body.get("row_count"), body.get("execution_seconds")
    counts: dict[str, Any] = {"rows": rows, "skipped": body.get("skipped_rows") or 0, "seconds": seconds,
                              "rate": rows / seconds if rows and seconds else None, "read": None}
    progress = job.progress
    if rows is None and progress:
        elapsed = float(progress.get("updated_at", 0)) - float(progress.get("started_at", 0))
        read, total = int(progress.get("rows_read") or 0), progress.get("bytes_total")
        counts["read"] = {"rows": read, "rate": read / elapsed if read and elapsed > 0 else None,
                          "percent": 100 * int(progress.get("bytes_read") or 0) / total if total else None}
    return counts
