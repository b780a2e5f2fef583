"""Scoped access keys end to end: keys made with `tastemaker keys`, used through boto3 against a live server."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from botocore.config import Config
from botocore.exceptions import ClientError

from tastemaker.cli.local_server import LocalServer
from tastemaker.cli.main import build_parser
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.util import train_and_deploy, wait_status

ACCOUNT, REGION = "000000000000", "us-east-1"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "access-keys.md"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def keys_cli(data_dir: Path, *argv: str, db_url: str | None = None) -> tuple[int, str, str]:
    """Run `tastemaker keys ...` in this process; (exit code, stdout, stderr)."""
    state = ["--data-dir", str(data_dir)] + (["--db-url", db_url] if db_url else [])
    args = build_parser().parse_args(["keys", *argv, *state])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = args.fn(args)
    return code, out.getvalue(), err.getvalue()


def create_key(data_dir: Path, name: str, policy: dict[str, Any] | None = None, *,
               db_url: str | None = None) -> tuple[str, str]:
    scope = ["--admin"] if policy is None else ["--policy", json.dumps(policy)]
    code, out, err = keys_cli(data_dir, "create", "--name", name, *scope, db_url=db_url)
    assert code == 0, err
    return credentials(out)


def credentials(out: str) -> tuple[str, str]:
    key = re.search(r"^AccessKeyId: (\S+)$", out, re.MULTILINE)
    secret = re.search(r"^SecretAccessKey: (\S+)$", out, re.MULTILINE)
    assert key and secret, out
    return key.group(1), secret.group(1)


def client(srv: LocalServer, service: str, key: str, secret: str) -> Any:
    return boto3.client(service, endpoint_url=srv.url, region_name=REGION, aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


def error(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as exc:
        call()
    return {"code": exc.value.response["Error"]["Code"], "message": exc.value.response["Error"]["Message"],
            "status": exc.value.response["ResponseMetadata"]["HTTPStatusCode"]}


def outcome(call: Callable[[], Any]) -> str:
    try:
        call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


def eventually(call: Callable[[], Any], expected: str, timeout: float = 30.0) -> None:
    """Servers re-read the keys every second: wait until `call` has the expected outcome."""
    deadline = time.time() + timeout
    seen = outcome(call)
    while seen != expected and time.time() < deadline:
        time.sleep(0.2)
        seen = outcome(call)
    assert seen == expected, f"still {seen}, expected {expected}"


def denied(name: str, action: str, resource: str, explicit: bool = False) -> str:
    why = ("with an explicit deny in an identity-based policy" if explicit
           else f"because no identity-based policy allows the personalize:{action} action")
    return (f"User: arn:aws:iam::{ACCOUNT}:user/{name} is not authorized to perform: personalize:{action} "
            f"on resource: {resource} {why}")


def arn(kind: str, name: str) -> str:
    return f"arn:aws:personalize:{REGION}:{ACCOUNT}:{kind}/{name}"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, import_root: Path, moto_s3: str) -> Iterator[LocalServer]:
    server = LocalServer(tmp_path_factory.mktemp("keys-server"), import_roots=[import_root],
                         env={"TASTEMAKER_S3_ENDPOINT_URL": moto_s3})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def world(srv: LocalServer, import_root: Path) -> dict[str, Any]:
    """A dataset group with imported interactions, a popularity campaign and an event tracker (root key)."""
    personalize = srv.client("personalize")
    data = write_dataset(import_root / unique("keys"))
    group = personalize.create_dataset_group(name=unique("keys"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    schema = personalize.create_schema(name=unique("s"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = personalize.create_dataset(name=unique("d"), schemaArn=schema, datasetGroupArn=group,
                                         datasetType="Interactions")["datasetArn"]
    wait_status(lambda: personalize.describe_dataset(datasetArn=dataset), "dataset")
    job = personalize.create_dataset_import_job(
        jobName=unique("imp"), datasetArn=dataset, dataSource={"dataLocation": str(data["interactions"])},
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/Personalize")["datasetImportJobArn"]
    done = wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob")
    assert done["status"] == "ACTIVE", done.get("failureReason")
    _, campaign = train_and_deploy(personalize, group, "aws-popularity-count", unique("camp"))
    tracker = personalize.create_event_tracker(name=unique("t"), datasetGroupArn=group)
    wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]),
                "eventTracker")
    return {"group": group, "campaign": campaign, "tracker": tracker["eventTrackerArn"],
            "tracking_id": tracker["trackingId"]}


def app_policy(world: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "personalize:GetRecommendations", "Resource": world["campaign"]},
        {"Effect": "Allow", "Action": "personalize:PutEvents", "Resource": world["tracker"]},
    ]}


def event(item: str = "i1") -> dict[str, Any]:
    return {"eventType": "click", "itemId": item, "sentAt": time.time()}


def test_app_key_may_only_get_recommendations_and_put_events_on_its_campaign_and_tracker(
        srv: LocalServer, world: dict[str, Any]) -> None:
    name = unique("app")
    key, secret = create_key(srv.data_dir, name, app_policy(world))
    runtime, events = client(srv, "personalize-runtime", key, secret), client(srv, "personalize-events", key, secret)
    personalize = client(srv, "personalize", key, secret)
    recommend = lambda: runtime.get_recommendations(campaignArn=world["campaign"], userId="u1")
    eventually(recommend, "ok")
    assert recommend()["itemList"]
    events.put_events(trackingId=world["tracking_id"], userId="u1", sessionId="s1", eventList=[event()])

    other = arn("campaign", unique("other"))
    refused = error(lambda: runtime.get_recommendations(campaignArn=other, userId="u1"))
    assert refused == {"code": "AccessDeniedException", "status": 403,
                       "message": denied(name, "GetRecommendations", other)}
    group_name = unique("nope")
    before = srv.client("personalize").list_dataset_groups()["datasetGroups"]
    refused = error(lambda: personalize.create_dataset_group(name=group_name))
    assert refused == {"code": "AccessDeniedException", "status": 403,
                       "message": denied(name, "CreateDatasetGroup", arn("dataset-group", group_name))}
    assert srv.client("personalize").list_dataset_groups()["datasetGroups"] == before
    assert error(lambda: personalize.describe_campaign(campaignArn=world["campaign"]))["code"] \
        == "AccessDeniedException"
    assert error(lambda: runtime.get_personalized_ranking(campaignArn=world["campaign"], userId="u1",
                                                          inputList=["i1"]))["code"] == "AccessDeniedException"


def test_put_events_to_another_tracker_is_refused(srv: LocalServer, world: dict[str, Any]) -> None:
    personalize = srv.client("personalize")
    group = personalize.create_dataset_group(name=unique("keys2"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    other = personalize.create_event_tracker(name=unique("t2"), datasetGroupArn=group)
    wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=other["eventTrackerArn"]), "eventTracker")
    name = unique("app")
    key, secret = create_key(srv.data_dir, name, app_policy(world))
    events = client(srv, "personalize-events", key, secret)
    eventually(lambda: events.put_events(trackingId=world["tracking_id"], sessionId="s", eventList=[event()]), "ok")
    refused = error(lambda: events.put_events(trackingId=other["trackingId"], sessionId="s", eventList=[event()]))
    assert refused == {"code": "AccessDeniedException", "status": 403,
                       "message": denied(name, "PutEvents", other["eventTrackerArn"])}


def test_deny_beats_allow_and_wildcards_match(srv: LocalServer, world: dict[str, Any]) -> None:
    name = unique("reader")
    key, secret = create_key(srv.data_dir, name, {"Statement": [
        {"Effect": "Allow", "Action": ["personalize:Describe*", "personalize:List*"], "Resource": "*"},
        {"Effect": "Allow", "Action": "personalize:Get?ecommendations",
         "Resource": f"arn:aws:personalize:*:{ACCOUNT}:campaign/camp-*"},
        {"Effect": "Deny", "Action": "personalize:DescribeCampaign", "Resource": world["campaign"]},
    ]})
    personalize, runtime = client(srv, "personalize", key, secret), client(srv, "personalize-runtime", key, secret)
    eventually(lambda: personalize.list_campaigns(), "ok")
    assert personalize.describe_dataset_group(datasetGroupArn=world["group"])["datasetGroup"]["datasetGroupArn"] \
        == world["group"]
    assert runtime.get_recommendations(campaignArn=world["campaign"], userId="u1")["itemList"]
    refused = error(lambda: personalize.describe_campaign(campaignArn=world["campaign"]))
    assert refused["message"] == denied(name, "DescribeCampaign", world["campaign"], explicit=True)
    refused = error(lambda: personalize.delete_campaign(campaignArn=world["campaign"]))
    assert refused["message"] == denied(name, "DeleteCampaign", world["campaign"])
    assert srv.client("personalize").describe_campaign(campaignArn=world["campaign"])["campaign"]["status"] \
        == "ACTIVE"


def test_rotation_keeps_the_old_secret_for_the_overlap_window_only(srv: LocalServer) -> None:
    name = unique("rot")
    policy = {"Statement": [{"Effect": "Allow", "Action": "personalize:ListDatasetGroups", "Resource": "*"}]}
    key, first = create_key(srv.data_dir, name, policy)
    list_with = lambda secret: lambda: client(srv, "personalize", key, secret).list_dataset_groups()
    eventually(list_with(first), "ok")

    code, out, err = keys_cli(srv.data_dir, "rotate", name, "--overlap-seconds", "600")
    assert code == 0, err
    assert credentials(out)[0] == key
    second = credentials(out)[1]
    eventually(list_with(second), "ok")
    assert outcome(list_with(first)) == "ok"  # inside the window: both secrets work

    code, out, err = keys_cli(srv.data_dir, "rotate", key, "--overlap-seconds", "2")
    assert code == 0, err
    third = credentials(out)[1]
    eventually(list_with(third), "ok")
    assert outcome(list_with(first)) == "InvalidSignatureException"  # a new rotation ends the earlier overlap
    eventually(list_with(second), "InvalidSignatureException")  # refused once its window has passed
    assert outcome(list_with(third)) == "ok"


def test_disabled_key_is_refused_until_enabled(srv: LocalServer) -> None:
    name = unique("dis")
    key, secret = create_key(srv.data_dir, name, {"Statement": [
        {"Effect": "Allow", "Action": "personalize:List*", "Resource": "*"}]})
    call = lambda: client(srv, "personalize", key, secret).list_schemas()
    eventually(call, "ok")
    assert keys_cli(srv.data_dir, "disable", name)[0] == 0
    eventually(call, "UnrecognizedClientException")
    assert keys_cli(srv.data_dir, "enable", key)[0] == 0
    eventually(call, "ok")
    assert keys_cli(srv.data_dir, "delete", name)[0] == 0
    eventually(call, "UnrecognizedClientException")


def test_root_key_can_be_disabled_only_once_an_admin_key_exists(srv: LocalServer) -> None:
    root = lambda: srv.client("personalize").list_dataset_groups()
    code, _, err = keys_cli(srv.data_dir, "disable", "root")
    assert code == 1 and "admin key" in err
    time.sleep(1.5)  # longer than a refresh: the refused disable must not have reached the server
    assert outcome(root) == "ok"

    name = unique("admin")
    key, secret = create_key(srv.data_dir, name)
    admin = lambda: client(srv, "personalize", key, secret).list_dataset_groups()
    try:
        assert keys_cli(srv.data_dir, "disable", "root")[0] == 0
        eventually(root, "UnrecognizedClientException")
        assert outcome(admin) == "ok"
        code, _, err = keys_cli(srv.data_dir, "disable", name)
        assert code == 1 and "last enabled admin key" in err
        assert keys_cli(srv.data_dir, "delete", name)[0] == 1
    finally:
        assert keys_cli(srv.data_dir, "enable", "root")[0] == 0
    eventually(root, "ok")
    assert keys_cli(srv.data_dir, "delete", name)[0] == 0


def test_secrets_are_not_stored_in_plain_text(srv: LocalServer) -> None:
    key, secret = create_key(srv.data_dir, unique("plain"), {"Statement": [
        {"Effect": "Allow", "Action": "personalize:List*", "Resource": "*"}]})
    code, out, err = keys_cli(srv.data_dir, "rotate", key, "--overlap-seconds", "60")
    assert code == 0, err
    rotated = credentials(out)[1]
    with sqlite3.connect(srv.data_dir / "tastemaker.db") as db:
        row = db.execute("SELECT * FROM access_keys WHERE access_key_id = ?", (key,)).fetchone()
    assert row is not None
    stored = " ".join(str(v) for v in row)
    assert secret not in stored and rotated not in stored
    for path in srv.data_dir.glob("tastemaker.db*"):  # the database file and its write-ahead log
        raw = path.read_bytes()
        assert secret.encode() not in raw and rotated.encode() not in raw
    assert (srv.data_dir / "access-keys.kek").stat().st_mode & 0o777 == 0o600


def test_docs_samples_run(srv: LocalServer) -> None:
    """docs/access-keys.md: a key made with the page's policy gets the boto3 sample's refusal, as the page shows.
    (The page's shell samples run, in order, in tests/docs/test_samples.py with every other page's.)"""
    text = DOCS.read_text()
    blocks = re.findall(r"```(\w+)\n(.*?)```", text, re.DOTALL)
    policy = next(body for lang, body in blocks if lang == "json")

    key, secret = create_key(srv.data_dir, "shop-frontend", json.loads(policy))
    sample = next(body for lang, body in blocks if lang == "python").replace("http://127.0.0.1:8080", srv.url)
    run_env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    deadline = time.time() + 30
    while True:
        done = subprocess.run([sys.executable, "-c", sample], check=False, env=run_env, capture_output=True,
                              text=True, timeout=120)
        if "AccessDeniedException" in done.stdout or time.time() > deadline:
            break
        time.sleep(0.3)  # the server has not read the new key yet (UnrecognizedClientException)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "AccessDeniedException",
        denied("shop-frontend", "CreateDatasetGroup", arn("dataset-group", "not-for-this-key"))]


@pytest.mark.postgres
def test_keys_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    data_dir = tmp_path / "pg-server"
    srv = LocalServer(data_dir, extra_args=["--db-url", postgres_url, "--job-threads", "0"])
    srv.start()
    try:
        name = unique("pg")
        key, secret = create_key(data_dir, name, {"Statement": [
            {"Effect": "Allow", "Action": "personalize:ListDatasetGroups", "Resource": "*"}]}, db_url=postgres_url)
        personalize = client(srv, "personalize", key, secret)
        eventually(lambda: personalize.list_dataset_groups(), "ok")
        refused = error(lambda: personalize.create_dataset_group(name="pg-nope"))
        assert refused["message"] == denied(name, "CreateDatasetGroup", arn("dataset-group", "pg-nope"))
        engine = sa.create_engine(postgres_url)
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT * FROM access_keys WHERE access_key_id = :k"), {"k": key}).one()
        engine.dispose()
        assert secret not in " ".join(str(v) for v in row)
        assert keys_cli(data_dir, "disable", name, db_url=postgres_url)[0] == 0
        eventually(lambda: personalize.list_dataset_groups(), "UnrecognizedClientException")
    finally:
        srv.stop()
