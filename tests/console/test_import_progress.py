"""A running dataset import's rows read so far are recorded in its stored document and shown by the console,
while DescribeDatasetImportJob keeps Personalize's shape (which has no progress field).

The import runs in a separate `tastemaker worker` process (the server runs no jobs), started through a small
launcher that makes the importer parse 64 kB blocks and record after every block (the defaults are 32 MB and
every few seconds, too coarse for a small file), and that freezes the worker (SIGSTOP) right after the first
progress it records with rows in it. The stored record and the console page are then read against the same,
unchanging figures; the worker is resumed and the page shows the final counts.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from tastemaker.cli.local_server import LocalServer
from tests.console.test_sessions import sign_in
from tests.e2e.datagen import INTERACTIONS_SCHEMA, schema_json
from tests.e2e.test_batch_progress import jobs_cli
from tests.e2e.util import wait_status

pytestmark = pytest.mark.slow

ROWS = 60_000  # about 30 blocks of 64 kB
ROLE = "arn:aws:iam::000000000000:role/x"
LAUNCHER = """
import os, signal, sys
from tastemaker.cli.main import main
from tastemaker.data import csv_import
from tastemaker.jobs import tasks

csv_import.BLOCK_SIZE = 1 << 16
tasks.IMPORT_PROGRESS_SECONDS = 0.0
record, frozen = tasks.ImportProgress.record, []

def record_then_freeze(self):
    record(self)
    if self.rows_read and not frozen:
        frozen.append(True)
        os.kill(os.getpid(), signal.SIGSTOP)

tasks.ImportProgress.record = record_then_freeze
sys.exit(main(sys.argv[1:]))
"""


def stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "T"


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    data, state = tmp_path / "data", tmp_path / "state"
    data.mkdir()
    csv_path = data / "interactions.csv"
    with csv_path.open("w") as out:
        out.write("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\n")
        out.writelines(f"u{n % 500},i{n % 300},{1_700_000_000 + n},click\n" for n in range(ROWS))
    server = LocalServer(state, import_roots=[data], extra_args=["--job-threads", "0"]).start()
    with (state / "worker.log").open("ab") as log:
        worker = subprocess.Popen([sys.executable, "-c", LAUNCHER, "worker", "--data-dir", str(state),
                                   "--job-threads", "1", "--import-root", str(data)],
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        yield {"server": server, "worker": worker, "csv": csv_path}
    finally:
        os.kill(worker.pid, signal.SIGCONT)
        worker.terminate()
        worker.wait(30)
        server.stop()


def test_a_running_import_shows_rows_read_then_its_final_counts(cluster: dict[str, Any]) -> None:
    server, worker, csv_path = cluster["server"], cluster["worker"], cluster["csv"]
    personalize = server.client("personalize")
    group = personalize.create_dataset_group(name="import-progress")["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    schema = personalize.create_schema(name="import-progress", schema=schema_json(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = personalize.create_dataset(name="import-progress", datasetGroupArn=group, datasetType="Interactions",
                                         schemaArn=schema)["datasetArn"]
    wait_status(lambda: personalize.describe_dataset(datasetArn=dataset), "dataset")
    job = personalize.create_dataset_import_job(jobName="import-progress", datasetArn=dataset, roleArn=ROLE,
                                                dataSource={"dataLocation": str(csv_path)})["datasetImportJobArn"]
    deadline = time.time() + 120
    while True:  # until the worker has recorded rows read and frozen itself
        entry = next((e for e in jobs_cli(server.data_dir) if e["resource_arn"] == job), None)
        if entry and entry["progress"].get("rows_read") and stopped(worker.pid):
            break
        assert worker.poll() is None, (server.data_dir / "worker.log").read_text()[-3000:]
        assert time.time() < deadline, f"no progress recorded: {entry}"
        time.sleep(0.05)
    try:
        progress = entry["progress"]
        size = csv_path.stat().st_size
        assert entry["status"] == "CREATE IN_PROGRESS"
        assert 0 < progress["rows_read"] < ROWS
        assert 0 < progress["bytes_read"] <= size and progress["bytes_total"] == size
        assert progress["updated_at"] >= progress["started_at"]

        described = personalize.describe_dataset_import_job(datasetImportJobArn=job)["datasetImportJob"]
        shape = botocore.session.get_session().get_service_model("personalize").shape_for("DatasetImportJob")
        assert described["status"] == "CREATE IN_PROGRESS"
        assert set(described) <= set(shape.members), set(described) - set(shape.members)  # the wire stays exact

        console = sign_in(server, server.access_key, server.secret_key)
        page = console.get("/console/group", params={"arn": group}).text
        row = re.search(r"<td class=\"counts\">(.*?)</td>", page, re.DOTALL)
        assert row, page
        assert f'<span class="reading">{progress["rows_read"]:,} rows read</span>' in row.group(1)
        elapsed = progress["updated_at"] - progress["started_at"]
        if elapsed > 0:
            assert f"{progress['rows_read'] / elapsed:,.0f} rows/s" in row.group(1)
        percent = 100 * progress["bytes_read"] / size
        assert f"{percent:.0f}% of the bytes" in row.group(1)
        assert "Work is in progress: reload" in page  # the page keeps refreshing while the import runs
    finally:
        os.kill(worker.pid, signal.SIGCONT)

    final = wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob")
    assert final["status"] == "ACTIVE", final
    page = console.get("/console/group", params={"arn": group}).text
    row = re.search(r"<td class=\"counts\">(.*?)</td>", page, re.DOTALL)
    assert row and f"{ROWS:,} imported" in row.group(1) and "rows read" not in row.group(1), page
