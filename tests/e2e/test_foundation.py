"""End-to-end: dataset groups, schemas, datasets and imports through real boto3 clients."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from tests.e2e.datagen import INTERACTIONS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA, write_dataset
from tests.e2e.util import wait_gone, wait_status


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def data(import_root: Path) -> dict[str, Path]:
    return write_dataset(import_root / "shop")


@pytest.fixture(scope="module")
def group(personalize) -> str:  # type: ignore[no-untyped-def]
    arn = personalize.create_dataset_group(name=unique("shop"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    return arn


@pytest.fixture(scope="module")
def schemas(personalize) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        kind: personalize.create_schema(name=unique(kind.lower()), schema=json.dumps(schema))["schemaArn"]
        for kind, schema in (("Interactions", INTERACTIONS_SCHEMA), ("Items", ITEMS_SCHEMA), ("Users", USERS_SCHEMA))
    }


@pytest.fixture(scope="module")
def datasets(personalize, group: str, schemas: dict[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    arns = {}
    for kind, schema_arn in schemas.items():
        arn = personalize.create_dataset(name=unique(kind.lower()), schemaArn=schema_arn, datasetGroupArn=group,
                                         datasetType=kind)["datasetArn"]
        wait_status(lambda arn=arn: personalize.describe_dataset(datasetArn=arn), "dataset")
        arns[kind] = arn
    return arns


def run_import(personalize, dataset_arn: str, location: str, mode: str = "FULL") -> dict:  # type: ignore[no-untyped-def]
    arn = personalize.create_dataset_import_job(
        jobName=unique("import"), datasetArn=dataset_arn, dataSource={"dataLocation": location},
        roleArn="arn:aws:iam::000000000000:role/Personalize", importMode=mode)["datasetImportJobArn"]
    return wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=arn), "datasetImportJob")


def test_custom_group_lifecycle_and_describe(personalize, group: str) -> None:  # type: ignore[no-untyped-def]
    described = personalize.describe_dataset_group(datasetGroupArn=group)["datasetGroup"]
    assert described["status"] == "ACTIVE"
    assert described["datasetGroupArn"] == group
    assert group.startswith("arn:aws:personalize:us-east-1:000000000000:dataset-group/")
    assert "domain" not in described
    assert described["creationDateTime"] <= described["lastUpdatedDateTime"]
    listed = [g["datasetGroupArn"] for page in personalize.get_paginator("list_dataset_groups").paginate()
              for g in page["datasetGroups"]]
    assert group in listed


def test_imports_from_local_path_and_s3(personalize, datasets, data, moto_s3, s3_bucket) -> None:  # type: ignore[no-untyped-def]
    job = run_import(personalize, datasets["Interactions"], str(data["interactions"]))
    assert job["status"] == "ACTIVE", job.get("failureReason")
    assert job["importMode"] == "FULL"
    job = run_import(personalize, datasets["Items"], f"file://{data['items']}")
    assert job["status"] == "ACTIVE", job.get("failureReason")
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    s3.upload_file(str(data["users"]), s3_bucket, "users/part1.csv")
    job = run_import(personalize, datasets["Users"], f"s3://{s3_bucket}/users/")
    assert job["status"] == "ACTIVE", job.get("failureReason")
    jobs = personalize.list_dataset_import_jobs(datasetArn=datasets["Users"])["datasetImportJobs"]
    assert [j["status"] for j in jobs] == ["ACTIVE"]


def test_domain_group_with_domain_schemas(personalize) -> None:  # type: ignore[no-untyped-def]
    group = personalize.create_dataset_group(name=unique("vod"), domain="VIDEO_ON_DEMAND")
    assert group["domain"] == "VIDEO_ON_DEMAND"
    arn = group["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    schema = dict(INTERACTIONS_SCHEMA)
    schema["fields"] = INTERACTIONS_SCHEMA["fields"][:4]
    custom = personalize.create_schema(name=unique("custom"), schema=json.dumps(schema))["schemaArn"]
    with pytest.raises(ClientError) as exc:
        personalize.create_dataset(name=unique("ds"), schemaArn=custom, datasetGroupArn=arn,
                                   datasetType="Interactions")
    assert error_code(exc) == "InvalidInputException"
    assert "domain" in exc.value.response["Error"]["Message"]
    domain_schema = personalize.create_schema(name=unique("vod-int"), schema=json.dumps(schema),
                                              domain="VIDEO_ON_DEMAND")["schemaArn"]
    ds = personalize.create_dataset(name=unique("ds"), schemaArn=domain_schema, datasetGroupArn=arn,
                                    datasetType="interactions")["datasetArn"]
    assert ds.endswith("/INTERACTIONS")
    described = wait_status(lambda: personalize.describe_dataset(datasetArn=ds), "dataset")
    assert described["datasetType"] == "INTERACTIONS"


def test_errors_name_the_problem(personalize, group: str, schemas: dict[str, str], datasets) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as exc:
        personalize.create_dataset_group(name="bad name!")
    assert error_code(exc) == "InvalidInputException"
    assert "name" in exc.value.response["Error"]["Message"]
    name = personalize.describe_dataset_group(datasetGroupArn=group)["datasetGroup"]["name"]
    with pytest.raises(ClientError) as exc:
        personalize.create_dataset_group(name=name)
    assert error_code(exc) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as exc:
        personalize.describe_dataset_group(datasetGroupArn=group + "-missing")
    assert error_code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        personalize.create_dataset(name=unique("again"), schemaArn=schemas["Items"], datasetGroupArn=group,
                                   datasetType="Items")
    assert error_code(exc) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as exc:
        personalize.delete_dataset_group(datasetGroupArn=group)
    assert error_code(exc) == "ResourceInUseException"
    with pytest.raises(ClientError) as exc:
        personalize.delete_schema(schemaArn=schemas["Items"])
    assert error_code(exc) == "ResourceInUseException"
    with pytest.raises(ClientError) as exc:
        personalize.create_dataset_import_job(jobName=unique("x"), datasetArn=datasets["Items"],
                                              dataSource={"dataLocation": "/etc/passwd"})
    assert error_code(exc) == "InvalidInputException"
    assert "import roots" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        personalize.list_dataset_groups(nextToken="not-a-token")
    assert error_code(exc) == "InvalidNextTokenException"


def test_bad_csvs_fail_with_a_precise_reason_and_keep_earlier_data(personalize, datasets, data, import_root,  # type: ignore[no-untyped-def]
                                                                   server) -> None:
    good = run_import(personalize, datasets["Items"], str(data["items"]))
    assert good["status"] == "ACTIVE"
    before = dataset_rows(server.data_dir, datasets["Items"])
    bad_dir = import_root / "bad"
    bad_dir.mkdir(exist_ok=True)
    cases = {
        "missing.csv": ("ITEM_ID,GENRES,PRICE,DESCRIPTION\ni1,Drama,1.0,x\n", "CREATION_TIMESTAMP"),
        "wrongtype.csv": ("ITEM_ID,GENRES,PRICE,CREATION_TIMESTAMP,DESCRIPTION\ni1,Drama,cheap,5,x\n", "PRICE"),
        "longid.csv": ("ITEM_ID,GENRES,PRICE,CREATION_TIMESTAMP,DESCRIPTION\n" + "x" * 300 + ",Drama,1.0,5,x\n",
                       "ITEM_ID"),
    }
    for filename, (text, column) in cases.items():
        (bad_dir / filename).write_text(text)
        job = run_import(personalize, datasets["Items"], str(bad_dir / filename))
        assert job["status"] == "CREATE FAILED"
        assert filename in job["failureReason"] and column in job["failureReason"], job["failureReason"]
    (bad_dir / "bool.csv").write_text("USER_ID,AGE,MEMBERSHIP\nu1,notanumber,gold\n")
    job = run_import(personalize, datasets["Users"], str(bad_dir / "bool.csv"))
    assert job["status"] == "CREATE FAILED" and "line 2" in job["failureReason"] and "AGE" in job["failureReason"]
    assert dataset_rows(server.data_dir, datasets["Items"]) == before


def dataset_rows(data_dir: Path, dataset_arn: str) -> list[tuple]:
    """Read the dataset's stored rows straight from the server's store (what training would see)."""
    import pyarrow.parquet as pq
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{data_dir / 'tastemaker.db'}")
    with engine.connect() as conn:
        keys = [r[0] for r in conn.execute(sa.text(
            "SELECT blob_key FROM dataset_parts WHERE dataset_arn = :a ORDER BY id"), {"a": dataset_arn})]
    engine.dispose()
    rows: list[tuple] = []
    for key in keys:
        table = pq.read_table(data_dir / "blobs" / key)
        rows += list(zip(*[table.column(c).to_pylist() for c in table.column_names]))
    return sorted(rows, key=repr)


def test_tags(personalize, group: str) -> None:  # type: ignore[no-untyped-def]
    personalize.tag_resource(resourceArn=group, tags=[{"tagKey": "team", "tagValue": "recs"}])
    assert personalize.list_tags_for_resource(resourceArn=group)["tags"] == [{"tagKey": "team", "tagValue": "recs"}]
    personalize.untag_resource(resourceArn=group, tagKeys=["team"])
    assert personalize.list_tags_for_resource(resourceArn=group)["tags"] == []
    with pytest.raises(ClientError) as exc:
        personalize.tag_resource(resourceArn=group, tags=[{"tagKey": f"k{i}", "tagValue": "v"} for i in range(51)])
    assert error_code(exc) == "TooManyTagsException"


def test_delete_dataset_group_after_its_datasets(personalize) -> None:  # type: ignore[no-untyped-def]
    arn = personalize.create_dataset_group(name=unique("temp"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    personalize.delete_dataset_group(datasetGroupArn=arn)
    wait_gone(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), personalize)


def test_unbuilt_operations_answer_not_implemented(personalize) -> None:  # type: ignore[no-untyped-def]
    from tastemaker.api.coverage import coverage_rows

    missing = [name for service, name, ok in coverage_rows() if service == "personalize" and not ok]
    if not missing:
        pytest.skip("every control-plane operation is implemented")
    op = missing[0]
    model = personalize.meta.service_model.operation_model(op)
    request = {name: _minimal(shape) for name, shape in model.input_shape.members.items()
               if name in model.input_shape.required_members}
    method = getattr(personalize, xform_name(op))
    with pytest.raises(ClientError) as exc:
        method(**request)
    assert error_code(exc) == "NotImplementedException"
    assert op in exc.value.response["Error"]["Message"]


def _minimal(shape):  # type: ignore[no-untyped-def]
    if shape.type_name == "string":
        if shape.enum:
            return shape.enum[0]
        if "Arn" in shape.name:
            return "arn:aws:personalize:us-east-1:000000000000:solution/x"
        return "x"
    if shape.type_name == "structure":
        return {n: _minimal(s) for n, s in shape.members.items() if n in shape.required_members}
    if shape.type_name == "list":
        return [_minimal(shape.member)]
    if shape.type_name == "map":
        return {}
    if shape.type_name == "boolean":
        return True
    if shape.type_name == "timestamp":
        return 0
    return 1

