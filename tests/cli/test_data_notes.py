"""quickstart --data says what is probably wrong with a user's data: duplicate events in its data summary,
millisecond timestamps refused with the fix, before anything is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from tastemaker.cli.client import Clients
from tastemaker.cli.data_notes import check_timestamps, duplicate_events
from tastemaker.cli.failures import CommandFailed
from tastemaker.cli.local_server import LocalServer
from tastemaker.cli.quickstart import build_catalog, load_folder
from tastemaker.cli.sample_data import generate
from tests.e2e.util import wait_status


def test_duplicates_are_counted_on_user_item_type_and_time() -> None:
    table = pa.table({"USER_ID": ["u1", "u1", "u1", "u2"], "ITEM_ID": ["i1", "i1", "i1", "i1"],
                      "EVENT_TYPE": ["click", "click", "buy", "click"], "TIMESTAMP": [10, 10, 10, 10]})
    assert duplicate_events(table) == 1


def test_millisecond_timestamps_are_refused_with_the_fix() -> None:
    with pytest.raises(CommandFailed, match=r"milliseconds.*Divide the column by 1000"):
        check_timestamps(pa.table({"TIMESTAMP": [1_700_000_000_000, 1_700_000_100_000]}), "interactions.csv")
    check_timestamps(pa.table({"TIMESTAMP": [1_700_000_000, 1_700_000_100]}), "interactions.csv")


def test_the_data_summary_names_duplicate_events(tmp_path: Path) -> None:
    generate(tmp_path, users=60, items=40, interactions=1200)
    csv = tmp_path / "interactions.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines + lines[1:26]) + "\n")  # the first 25 events twice
    paths, schemas = load_folder(tmp_path)
    notes = build_catalog(paths, schemas, None).notes
    assert len(notes) == 1 and notes[0].startswith("note: 25 duplicate events"), notes


def test_quickstart_refuses_millisecond_data_in_one_line(tmp_path: Path, server_env: LocalServer) -> None:
    generate(tmp_path / "ms", users=60, items=40, interactions=1200)
    csv = tmp_path / "ms" / "interactions.csv"
    header, *rows = csv.read_text().splitlines()
    column = header.split(",").index("TIMESTAMP")

    def to_ms(row: str) -> str:
        cells = row.split(",")
        cells[column] = cells[column] + "000"
        return ",".join(cells)

    csv.write_text("\n".join([header, *map(to_ms, rows)]) + "\n")
    run = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "quickstart", "--data", str(tmp_path / "ms"),
                          "--data-dir", str(server_env.data_dir)], capture_output=True, text=True,
                         env=dict(os.environ), timeout=300, check=False)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "look like milliseconds" in run.stderr and "Divide the column by 1000" in run.stderr


def test_an_import_job_with_millisecond_timestamps_fails_with_the_fix(clients: Clients, cli_server: LocalServer) -> None:
    """Through boto3, as a user's own import: refused, not imported silently, and the reason says what to do."""
    p = clients.personalize
    name = f"ms-{uuid.uuid4().hex[:6]}"
    folder = cli_server.data_dir / "imports" / name
    folder.mkdir(parents=True)
    csv = folder / "interactions.csv"
    csv.write_text("USER_ID,ITEM_ID,TIMESTAMP\n" + "".join(f"u{k % 40},i{k % 30},{1_700_000_000_000 + k}\n"
                                                          for k in range(1200)))
    group = p.create_dataset_group(name=name)["datasetGroupArn"]
    wait_status(lambda: p.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    schema = p.create_schema(name=name, schema=json.dumps({
        "type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema", "version": "1.0",
        "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                   {"name": "TIMESTAMP", "type": "long"}]}))["schemaArn"]
    dataset = p.create_dataset(name=name, schemaArn=schema, datasetGroupArn=group,
                               datasetType="Interactions")["datasetArn"]
    wait_status(lambda: p.describe_dataset(datasetArn=dataset), "dataset")
    job = p.create_dataset_import_job(jobName=name, datasetArn=dataset, dataSource={"dataLocation": str(csv)},
                                      roleArn="arn:aws:iam::000000000000:role/x")["datasetImportJobArn"]
    done = wait_status(lambda: p.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob")
    assert done["status"] == "CREATE FAILED"
    assert "milliseconds" in done["failureReason"] and "1000" in done["failureReason"], done["failureReason"]
