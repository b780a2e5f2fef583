"""Data as AWS's sample notebooks send it: one-branch unions, properties that repeat a member, filter fields
in other case, imports with rows Personalize skips, pandas' index column (issue #14 items 1-5)."""

from __future__ import annotations

import io
import json
import uuid
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from tastemaker.cli.local_server import LocalServer
from tastemaker.cli.main import build_parser
from tests.e2e.util import wait_status

# As the getting-started notebook writes them: unions with one branch.
INTERACTIONS = {
    "type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
    "fields": [{"name": "USER_ID", "type": ["string"]}, {"name": "ITEM_ID", "type": ["string"]},
               {"name": "EVENT_TYPE", "type": ["string"]}, {"name": "TIMESTAMP", "type": "long"}],
    "version": "1.0",
}
ITEMS = {
    "type": "record", "name": "Items", "namespace": "com.amazonaws.personalize.schema",
    "fields": [{"name": "ITEM_ID", "type": ["string"]}, {"name": "GENRES", "type": ["string"], "categorical": True},
               {"name": "YEAR", "type": ["int"]}],
    "version": "1.0",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def group(personalize) -> dict[str, str]:  # type: ignore[no-untyped-def]
    arn = personalize.create_dataset_group(name=unique("notebook"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    out = {"group": arn}
    for kind, schema in (("Interactions", INTERACTIONS), ("Items", ITEMS)):
        schema_arn = personalize.create_schema(name=unique(kind.lower()), schema=json.dumps(schema))["schemaArn"]
        out[kind] = personalize.create_dataset(name=unique(kind.lower()), schemaArn=schema_arn,
                                               datasetGroupArn=arn, datasetType=kind)["datasetArn"]
        wait_status(lambda kind=kind: personalize.describe_dataset(datasetArn=out[kind]), "dataset")
    return out


def run_import(personalize, dataset_arn: str, path: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    arn = personalize.create_dataset_import_job(
        jobName=unique("import"), datasetArn=dataset_arn, dataSource={"dataLocation": f"file://{path}"},
        roleArn="arn:aws:iam::000000000000:role/Personalize")["datasetImportJobArn"]
    return wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=arn), "datasetImportJob")


def import_report(server: LocalServer, job_arn: str) -> dict[str, Any]:
    """What `tastemaker import-report` prints for the job, as JSON."""
    out = io.StringIO()
    args = build_parser().parse_args(["import-report", job_arn, "--data-dir", str(server.data_dir)])
    with redirect_stdout(out):
        assert args.fn(args) == 0
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def test_one_branch_unions_are_valid_avro(personalize) -> None:  # type: ignore[no-untyped-def]
    arn = personalize.create_schema(name=unique("one-branch"), schema=json.dumps(ITEMS))["schemaArn"]
    described = json.loads(personalize.describe_schema(schemaArn=arn)["schema"]["schema"])
    assert described["fields"][2]["type"] == ["int"]


def test_items_with_empty_required_metadata_import_active_and_report_the_skipped_rows(  # type: ignore[no-untyped-def]
        server: LocalServer, personalize, group: dict[str, str], import_root: Path) -> None:
    path = import_root / "movies.csv"
    rows = ["ITEM_ID,GENRES,YEAR", *[f"m{i},Comedy|Drama,{1990 + i}" for i in range(20)],
            "m20,Documentary,", "m21,Drama,2001", "m22,(no genres listed),"]
    path.write_text("\n".join(rows) + "\n")
    job = run_import(personalize, group["Items"], path)
    assert job["status"] == "ACTIVE", job.get("failureReason")
    assert "skipped" not in json.dumps(job, default=str)  # the wire shape is unchanged
    report = import_report(server, job["datasetImportJobArn"])
    assert report["importedRows"] == 21 and report["skippedRows"] == 2
    assert len(report["skippedExamples"]) == 2
    assert "line 22" in report["skippedExamples"][0] and "YEAR" in report["skippedExamples"][0]
    assert "line 24" in report["skippedExamples"][1]


def test_a_pandas_index_column_is_ignored_and_reported(  # type: ignore[no-untyped-def]
        server: LocalServer, personalize, group: dict[str, str], import_root: Path) -> None:
    path = import_root / "pandas.csv"
    path.write_text(",ITEM_ID,GENRES,YEAR\n0,m1,Comedy,1999\n1,m2,Drama,2000\n")
    job = run_import(personalize, group["Items"], path)
    assert job["status"] == "ACTIVE", job.get("failureReason")
    report = import_report(server, job["datasetImportJobArn"])
    assert report["importedRows"] == 2 and report["skippedRows"] == 0
    (note,) = report["ignoredColumns"]
    assert "pandas.csv" in note and "column 1" in note and "empty name" in note and "index=False" in note


def test_a_named_column_that_is_not_in_the_schema_still_fails(personalize, group: dict[str, str],  # type: ignore[no-untyped-def]
                                                              import_root: Path) -> None:
    path = import_root / "extra.csv"
    path.write_text(",ITEM_ID,GENRES,YEAR,RATING\n0,m1,Comedy,1999,4\n")
    job = run_import(personalize, group["Items"], path)
    assert job["status"] == "CREATE FAILED"
    assert "not in the schema: [RATING]" in job["failureReason"]


def test_filter_fields_match_in_any_case(personalize, group: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    for expression in ('EXCLUDE ItemID WHERE Interactions.event_type IN ("Watch")',
                       'INCLUDE ItemID WHERE Items.genres IN ("Comedy")',
                       'INCLUDE ItemID WHERE items.Year > 1995'):
        arn = personalize.create_filter(name=unique("case"), datasetGroupArn=group["group"],
                                        filterExpression=expression)["filterArn"]
        described = wait_status(lambda arn=arn: personalize.describe_filter(filterArn=arn), "filter")
        assert described["status"] == "ACTIVE" and described["filterExpression"] == expression
        personalize.delete_filter(filterArn=arn)
    with pytest.raises(personalize.exceptions.InvalidInputException):
        personalize.create_filter(name=unique("case"), datasetGroupArn=group["group"],
                                  filterExpression='INCLUDE ItemID WHERE Items.NO_SUCH_FIELD IN ("x")')


def test_put_events_accepts_the_item_in_properties(personalize, events, group: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    created = personalize.create_event_tracker(name=unique("tracker"), datasetGroupArn=group["group"])
    wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=created["eventTrackerArn"]),
                "eventTracker")
    # exactly as the getting-started notebook sends it
    events.put_events(trackingId=created["trackingId"], userId="u1", sessionId="s1", eventList=[
        {"sentAt": 1_700_000_000, "eventType": "RATING", "properties": json.dumps({"itemId": "123"})}])
    # both set: the request member wins
    events.put_events(trackingId=created["trackingId"], userId="u1", sessionId="s1", eventList=[
        {"sentAt": 1_700_000_001, "eventType": "RATING", "itemId": "m1", "properties": json.dumps({"itemId": "123"})}])
