"""The notebook driver (bench/compat/run_notebooks.py) on a small notebook of our own: shell lines replaced by the
environment, boto3 reaching Tastemaker and moto through AWS_ENDPOINT_URL_* only, sleeps shortened, a cell that
waits forever stopped by --cell-timeout, and one PASS/FAIL per code cell."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compat.getting_started import movielens

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
CELLS = [
    "import csv, json, time\nimport boto3",
    ("!wget -N https://files.grouplens.org/datasets/movielens/ml-latest-small.zip\n!unzip -o ml-latest-small.zip\n"
    "rows = list(csv.DictReader(open('ml-latest-small/ratings.csv')))\nlen(rows)"),
    ("%%time\npersonalize = boto3.client('personalize')\n"
    "arn = personalize.create_dataset_group(name='driver-test')['datasetGroupArn']\n"
    "while personalize.describe_dataset_group(datasetGroupArn=arn)['datasetGroup']['status'] != 'ACTIVE':\n"
    "    time.sleep(60)"),
    ("with open('/opt/ml/metadata/resource-metadata.json') as fh:\n"
    "    region = json.load(fh)['ResourceArn'].split(':')[3]\n"
    "bucket = boto3.client('sts').get_caller_identity()['Account'] + '-' + region + '-driver'\n"
    "boto3.client('s3').create_bucket(Bucket=bucket)\n"
    "assert bucket in [b['Name'] for b in boto3.client('s3').list_buckets()['Buckets']]"),
    "%store arn\n%store rows",
    "personalize.describe_dataset_group(datasetGroupArn=arn + '-missing')",
    "started = time.time()\nwhile True:\n    time.sleep(60)",
    "assert len(rows) == 120 * 30",
]


def test_the_driver_runs_each_cell_and_reports_it(tmp_path: Path) -> None:
    snapshot = tmp_path / "samples"
    snapshot.mkdir()
    notebook = {"cells": [{"cell_type": "markdown", "source": ["# not run"]}]
                + [{"cell_type": "code", "source": text.splitlines(keepends=True)} for text in CELLS],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (snapshot / "ours.ipynb").write_text(json.dumps(notebook))
    data = tmp_path / "ml"
    movielens(data)
    report = tmp_path / "report.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "compat" / "run_notebooks.py"), str(snapshot),
                          "--notebooks", "ours.ipynb", "--data", str(data), "--work", str(tmp_path / "work"),
                          "--sleep", "0.05", "--cell-timeout", "3", "--json", str(report)],
                         check=False, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr[-3000:]  # two cells fail
    results = json.loads(report.read_text())
    assert [r["cell"] for r in results] == list(range(len(CELLS)))
    failed = {r["cell"]: r["error"] for r in results if not r["ok"]}
    assert set(failed) == {5, 6}, run.stderr[-3000:]
    assert "ResourceNotFoundException" in failed[5]
    assert "CellTimeout" in failed[6] and "--cell-timeout" in failed[6]
    assert "ours.ipynb: 6 passed, 2 failed of 8 code cells" in run.stdout
    assert (tmp_path / "work" / "ours" / "ml-latest-small" / "ratings.csv").exists()
