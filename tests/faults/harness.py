"""Helpers of the fault tests: fresh PostgreSQL databases, a dataset group with data, processes of a server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from botocore.exceptions import ClientError

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import INTERACTIONS_SCHEMA
from tests.e2e.util import wait_status

RECIPE = "arn:aws:personalize:::recipe/"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def fresh_database(postgres_url: str) -> str:
    """A new empty database beside the session's one (each server of a test counts only its own rows)."""
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"tm_faults_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


def error_code(call: Any) -> str | None:
    """None when the call succeeds, else the AWS error code it raised."""
    try:
        call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return None


def group_with_interactions(client: Any, csv_path: Path, name: str | None = None, *,
                            timeout: float = 120.0) -> tuple[str, str]:
    """An ACTIVE dataset group and its Interactions dataset with `csv_path` imported: (group, dataset)."""
    group = client.create_dataset_group(name=name or unique("g"))["datasetGroupArn"]
    wait_status(lambda: client.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    schema = client.create_schema(name=unique("s"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = client.create_dataset(name=unique("d"), schemaArn=schema, datasetGroupArn=group,
                                    datasetType="Interactions")["datasetArn"]
    wait_status(lambda: client.describe_dataset(datasetArn=dataset), "dataset")
    job = client.create_dataset_import_job(jobName=unique("imp"), datasetArn=dataset,
                                           dataSource={"dataLocation": str(csv_path)})["datasetImportJobArn"]
    done = wait_status(lambda: client.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob",
                       timeout=timeout)
    assert done["status"] == "ACTIVE", done.get("failureReason")
    return group, dataset


def trained_version(client: Any, group: str, recipe: str = "aws-popularity-count",
                    hyperparameters: dict[str, str] | None = None, timeout: float = 300) -> str:
    """An ACTIVE solution version of `recipe` on `group` (with these algorithmHyperParameters, if any)."""
    config = {"solutionConfig": {"algorithmHyperParameters": hyperparameters}} if hyperparameters else {}
    solution = client.create_solution(name=unique("sol"), datasetGroupArn=group, recipeArn=RECIPE + recipe,
                                      **config)["solutionArn"]
    wait_status(lambda: client.describe_solution(solutionArn=solution), "solution")
    version = client.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    final = wait_status(lambda: client.describe_solution_version(solutionVersionArn=version), "solutionVersion",
                        timeout=timeout)
    assert final["status"] == "ACTIVE", final
    return version


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def trainer_pids(server: LocalServer) -> list[int]:
    assert server.process is not None
    found = []
    for pid in descendants(server.process.pid):
        try:
            if b"tastemaker.jobs.train_process" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Worker:
    """A `tastemaker worker` process over a server's data directory and database (kill -9, SIGSTOP, restart)."""

    def __init__(self, data_dir: Path, import_roots: list[Path], env: dict[str, str]) -> None:
        self.data_dir, self.import_roots, self.env = data_dir, import_roots, env
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"worker-{uuid.uuid4().hex[:6]}.log"

    def start(self) -> Worker:
        cmd = [sys.executable, "-m", "tastemaker.cli.main", "worker", "--data-dir", str(self.data_dir),
               "--job-threads", "1"]
        for root in self.import_roots:
            cmd += ["--import-root", str(root)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
