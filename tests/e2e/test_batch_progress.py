"""A batch job's progress is visible while it runs: in its stored document, `tastemaker jobs`, `/metrics` and the
worker's log, while DescribeBatchInferenceJob stays exactly Personalize's shape (which has no progress field).

The job runs in a separate `tastemaker worker` process, so what the API server's `/metrics` and the CLI show
comes from the shared database, not from the process that does the work. Once the job has recorded progress,
the worker is frozen (SIGSTOP) so every reader is checked against the same, unchanging figures.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from tastemaker.cli.local_server import LocalServer, free_port
from tastemaker.cli.main import build_parser
from tests.e2e.datagen import write_dataset
from tests.e2e.util import wait_status
from tests.faults.harness import Worker, group_with_interactions, trained_version, unique

FILES, LINES = 30, 3000  # input files and lines per file: a job that runs for a while, a file at a time
ROLE = "arn:aws:iam::000000000000:role/x"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("progress-data")
    write_dataset(data, users=200, items=120, per_user=20)
    inputs = data / "in"
    inputs.mkdir()
    for number in range(FILES):
        (inputs / f"users-{number:02d}.jsonl").write_text("".join(f'{{"userId": "u{k % 200}"}}\n'
                                                                   for k in range(LINES)))
    state = tmp_path_factory.mktemp("progress-server")
    port = free_port()
    server = LocalServer(state, import_roots=[data],
                         extra_args=["--job-threads", "0", "--metrics-port", str(port)]).start()
    worker = Worker(state, [data], {}).start()
    try:
        client = server.client("personalize")
        group, _dataset = group_with_interactions(client, data / "interactions.csv")
        yield {"server": server, "worker": worker, "client": client, "data": data, "metrics_port": port,
               "version": trained_version(client, group), "group": group}
    finally:
        os.kill(worker.pid, signal.SIGCONT)
        worker.stop()
        server.stop()


def jobs_cli(state: Path) -> list[dict[str, Any]]:
    args = build_parser().parse_args(["jobs", "--json", "--data-dir", str(state)])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert args.fn(args) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def metric(port: int, name: str, arn: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and f'arn="{arn}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_progress_is_visible_while_a_batch_inference_job_runs(cluster: dict[str, Any]) -> None:
    client, server, worker = cluster["client"], cluster["server"], cluster["worker"]
    out = cluster["data"] / unique("out")
    job = client.create_batch_inference_job(
        jobName=unique("bij"), solutionVersionArn=cluster["version"], roleArn=ROLE, numResults=5,
        jobInput={"s3DataSource": {"path": str(cluster["data"] / "in") + "/"}},
        jobOutput={"s3DataDestination": {"path": str(out) + "/"}})["batchInferenceJobArn"]
    deadline = time.time() + 120
    while True:  # wait until the worker has recorded a published file, then freeze it
        entry = next((e for e in jobs_cli(server.data_dir) if e["resource_arn"] == job), None)
        if entry and entry["progress"].get("files_done", 0) >= 1:
            os.kill(worker.pid, signal.SIGSTOP)
            break
        described = client.describe_batch_inference_job(batchInferenceJobArn=job)["batchInferenceJob"]
        assert described["status"] != "ACTIVE", "the job ended before its progress was seen"
        assert time.time() < deadline, "no progress recorded"
        time.sleep(0.05)
    try:
        frozen = next(e for e in jobs_cli(server.data_dir) if e["resource_arn"] == job)
        progress = frozen["progress"]
        assert frozen["state"] == "running" and frozen["status"] == "CREATE IN_PROGRESS"
        assert progress["files_total"] == FILES and 1 <= progress["files_done"] < FILES
        assert LINES * progress["files_done"] <= progress["lines_processed"] < LINES * FILES
        assert progress["lines_failed"] == 0

        port = cluster["metrics_port"]
        assert metric(port, "tastemaker_batch_job_lines_processed", job) == progress["lines_processed"]
        assert metric(port, "tastemaker_batch_job_files_done", job) == progress["files_done"]
        assert metric(port, "tastemaker_batch_job_files_total", job) == FILES

        described = client.describe_batch_inference_job(batchInferenceJobArn=job)["batchInferenceJob"]
        shape = botocore.session.get_session().get_service_model("personalize").shape_for("BatchInferenceJob")
        assert described["status"] == "CREATE IN_PROGRESS"
        assert set(described) <= set(shape.members), set(described) - set(shape.members)  # the wire stays exact

        text = io.StringIO()
        args = build_parser().parse_args(["jobs", "--data-dir", str(server.data_dir)])
        with contextlib.redirect_stdout(text):
            args.fn(args)
        assert f"{progress['lines_processed']:,} lines answered (0 with errors), {progress['files_done']} of " \
               f"{FILES} files done" in text.getvalue()
    finally:
        os.kill(worker.pid, signal.SIGCONT)

    final = wait_status(lambda: client.describe_batch_inference_job(batchInferenceJobArn=job), "batchInferenceJob",
                        timeout=300)
    assert final["status"] == "ACTIVE", final
    assert len(list(out.glob("*.out"))) == FILES
    done = [e for e in jobs_cli(server.data_dir) if e["resource_arn"] == job]
    assert done == []  # no longer queued or running
    assert metric(cluster["metrics_port"], "tastemaker_batch_job_lines_processed", job) is None
    log = worker.log_path.read_text()
    assert f"{job}: {LINES * FILES} lines answered (0 with errors), {FILES} of {FILES} files done" in log


def test_a_segment_job_records_lines_and_files(cluster: dict[str, Any]) -> None:
    client = cluster["client"]
    affinity = trained_version(client, cluster["group"], "aws-item-affinity")
    inputs = cluster["data"] / unique("items")
    inputs.mkdir()
    for number in range(3):
        (inputs / f"q{number}.jsonl").write_text('{"itemId": "i1"}\n{"itemId": "no-such-item"}\n')
    job = client.create_batch_segment_job(
        jobName=unique("bsj"), solutionVersionArn=affinity, roleArn=ROLE, numResults=10,
        jobInput={"s3DataSource": {"path": str(inputs) + "/"}},
        jobOutput={"s3DataDestination": {"path": str(cluster["data"] / unique("seg-out")) + "/"}})["batchSegmentJobArn"]
    final = wait_status(lambda: client.describe_batch_segment_job(batchSegmentJobArn=job), "batchSegmentJob")
    assert final["status"] == "ACTIVE" and "progress" not in final
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{cluster['server'].data_dir / 'tastemaker.db'}")
    with engine.connect() as conn:
        body = json.loads(conn.execute(sa.text("SELECT body FROM resources WHERE arn = :a"), {"a": job}).scalar())
    engine.dispose()
    progress = body["progress"]
    assert (progress["lines_processed"], progress["lines_failed"]) == (6, 3)
    assert (progress["files_done"], progress["files_total"]) == (3, 3)
