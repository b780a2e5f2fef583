"""End-to-end: webhooks from a durable outbox (HMAC-signed POSTs, retries), EventBridge and SNS targets on
moto's server, and `tastemaker webhooks` (issue 17 item 6)."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from tastemaker.cli.local_server import LocalServer, free_port
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.util import wait_status

POPULARITY = "arn:aws:personalize:::recipe/aws-popularity-count"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Receiver:
    """A webhook receiver on a fixed port that can be started late (while it is down, deliveries fail)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


def cli(srv: LocalServer, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "webhooks", *args, "--data-dir",
                           str(srv.data_dir)], capture_output=True, text=True, timeout=60, check=check)


def wait_for(condition: Any, timeout: float = 90.0) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("not within the time allowed")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, import_root: Path, moto_s3: str) -> Iterator[LocalServer]:
    server = LocalServer(tmp_path_factory.mktemp("webhooks"), import_roots=[import_root], env={
        "TASTEMAKER_MAINTENANCE_SECONDS": "0.3", "TASTEMAKER_JOB_STALE_SECONDS": "3",
        "AWS_ENDPOINT_URL_SNS": moto_s3, "AWS_ENDPOINT_URL_EVENTBRIDGE": moto_s3,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    server.start()
    yield server
    server.stop()


def test_a_receiver_down_during_training_gets_the_solution_version_active_delivery(  # Must show
        srv: LocalServer, import_root: Path) -> None:
    receiver = Receiver(free_port())
    added = cli(srv, "add", f"http://127.0.0.1:{receiver.port}/hook").stdout.splitlines()
    hook_id, secret = added[0], added[1].split()[1]
    personalize = srv.client("personalize")
    group = personalize.create_dataset_group(name=unique("wh"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    schema = personalize.create_schema(name=unique("int"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = personalize.create_dataset(name=unique("int"), schemaArn=schema, datasetGroupArn=group,
                                         datasetType="Interactions")["datasetArn"]
    wait_status(lambda: personalize.describe_dataset(datasetArn=dataset), "dataset")
    paths = write_dataset(import_root / unique("webhooks"))
    job = personalize.create_dataset_import_job(
        jobName=unique("imp"), datasetArn=dataset, dataSource={"dataLocation": str(paths["interactions"])},
        roleArn="arn:aws:iam::000000000000:role/P")["datasetImportJobArn"]
    wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob")
    solution = personalize.create_solution(name=unique("pop"), datasetGroupArn=group,
                                           recipeArn=POPULARITY)["solutionArn"]
    wait_status(lambda: personalize.describe_solution(solutionArn=solution), "solution")
    version = personalize.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    assert wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version),
                       "solutionVersion", timeout=300)["status"] == "ACTIVE"
    waiting = wait_for(lambda: [line for line in cli(srv, "list").stdout.splitlines()
                                if line.startswith(hook_id) and "pending=0" not in line])
    assert "given_up=0" in waiting[0]  # the receiver is down: the events wait in the outbox

    receiver.start()  # the receiver comes back
    try:
        def active() -> list[dict[str, Any]]:
            return [e for e in receiver.events() if e["detail"]["resourceArn"] == version
                    and e["detail"]["status"] == "ACTIVE"]

        (event,) = wait_for(active)
        assert event["detail-type"] == "Solution Version State Change" and event["source"] == "tastemaker.personalize"
        assert event["detail"]["previousStatus"] == "CREATE IN_PROGRESS"
        assert event["detail"]["datasetGroupArn"] == group and "metrics" in event["detail"]
        # the earlier import waited longer (more failed attempts, a longer backoff) and arrives too, every step
        def steps() -> list[tuple[str, str]]:
            return sorted((e["detail"]["previousStatus"] or "", e["detail"]["status"]) for e in receiver.events()
                          if e["detail"]["resourceArn"] == job)

        wait_for(lambda: steps() == [("", "CREATE PENDING"), ("CREATE IN_PROGRESS", "ACTIVE"),
                                     ("CREATE PENDING", "CREATE IN_PROGRESS")])
        headers, body = next((h, b) for h, b in receiver.received if json.loads(b)["id"] == event["id"])
        assert headers["x-tastemaker-event-id"] == event["id"]
        stamp, mac = (part.split("=", 1)[1] for part in headers["x-tastemaker-signature"].split(","))
        expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(mac, expected)
        wait_for(lambda: any(line.startswith(hook_id) and "pending=0" in line
                             for line in cli(srv, "list").stdout.splitlines()))
        assert secret not in srv.log_path.read_text(errors="replace")
    finally:
        receiver.stop()
        cli(srv, "remove", hook_id)


def test_sns_and_eventbridge_targets_receive_state_changes(srv: LocalServer, moto_s3: str,
                                                           import_root: Path) -> None:
    kwargs = {"endpoint_url": moto_s3, "region_name": "us-east-1"}
    sqs, sns, events = (boto3.client(name, **kwargs) for name in ("sqs", "sns", "events"))
    queues = {}
    for name in ("from-sns", "from-eventbridge"):
        url = sqs.create_queue(QueueName=unique(name))["QueueUrl"]
        queues[name] = (url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
                        ["Attributes"]["QueueArn"])
    topic = sns.create_topic(Name=unique("tastemaker"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queues["from-sns"][1])
    bus = events.create_event_bus(Name=unique("bus"))["EventBusArn"]
    rule = unique("rule")
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["tastemaker.personalize"]}))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": queues["from-eventbridge"][1]}])
    personalize = srv.client("personalize")
    group = personalize.create_dataset_group(name=unique("grp"))["datasetGroupArn"]
    other = personalize.create_dataset_group(name=unique("other"))["datasetGroupArn"]  # not subscribed
    for arn in (group, other):
        wait_status(lambda arn=arn: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    hooks = [cli(srv, "add", target, "--dataset-group", group).stdout.split()[0] for target in (topic, bus)]
    try:
        # Import jobs: their state changes are made by the job runner.
        schema = personalize.create_schema(name=unique("s"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
        data = write_dataset(import_root / unique("sns"))["interactions"]
        jobs = []
        for parent in (other, group):
            target = personalize.create_dataset(name=unique("d"), schemaArn=schema, datasetGroupArn=parent,
                                                datasetType="Interactions")["datasetArn"]
            jobs.append(personalize.create_dataset_import_job(
                jobName=unique("imp"), datasetArn=target, dataSource={"dataLocation": str(data)},
                roleArn="arn:aws:iam::000000000000:role/Personalize")["datasetImportJobArn"])
        ignored, dataset = jobs
        seen: dict[str, list[dict[str, Any]]] = {"from-sns": [], "from-eventbridge": []}

        def arrived(name: str) -> list[dict[str, Any]]:
            got = sqs.receive_message(QueueUrl=queues[name][0], MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in got.get("Messages", []):
                body = json.loads(message["Body"])
                seen[name].append(json.loads(body["Message"]) if name == "from-sns" else body)
            return [e for e in seen[name] if e["detail"]["resourceArn"] == dataset]

        def active(name: str) -> list[dict[str, Any]]:
            return [e for e in arrived(name) if e["detail"]["status"] == "ACTIVE"]

        (event,) = wait_for(lambda: active("from-sns"))
        assert event["detail-type"] == "Dataset Import Job State Change"
        (from_bus,) = wait_for(lambda: active("from-eventbridge"))
        assert from_bus["source"] == "tastemaker.personalize"
        assert from_bus["detail-type"] == "Dataset Import Job State Change"
        assert from_bus["detail"]["status"] == "ACTIVE" and from_bus["resources"] == [dataset]
        wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=ignored), "datasetImportJob")
        time.sleep(1.0)
        arrived("from-sns")
        assert all(e["detail"]["resourceArn"] != ignored for e in seen["from-sns"])  # another group's change
    finally:
        for hook in hooks:
            cli(srv, "remove", hook)


def test_webhooks_cli_tests_a_target_and_refuses_bad_ones(srv: LocalServer) -> None:
    receiver = Receiver(free_port())
    receiver.start()
    try:
        hook = cli(srv, "add", f"http://127.0.0.1:{receiver.port}/x", "--secret", "s3").stdout.split()[0]
        out = cli(srv, "test", hook)
        assert "delivered test event" in out.stdout
        assert receiver.events()[0]["detail-type"] == "Tastemaker Webhook Test"
        assert hook in cli(srv, "list").stdout
        cli(srv, "remove", hook)
        assert hook not in cli(srv, "list").stdout
    finally:
        receiver.stop()
    bad = cli(srv, "add", "ftp://example.com/x", check=False)
    assert bad.returncode == 2 and "EventBridge bus ARN" in bad.stderr
    down = cli(srv, "add", f"http://127.0.0.1:{free_port()}/gone").stdout.split()[0]
    failed = cli(srv, "test", down, check=False)
    assert failed.returncode == 1 and "delivery failed" in failed.stderr
    cli(srv, "remove", down)


def test_changes_made_inside_create_calls_are_delivered_and_secrets_are_sealed(srv: LocalServer) -> None:
    """A dataset group is ACTIVE when CreateDatasetGroup answers; its creation and deletion still reach the
    webhook (the store records every state change with the change). The secret is not stored in the clear."""
    receiver = Receiver(free_port())
    receiver.start()
    try:
        added = cli(srv, "add", f"http://127.0.0.1:{receiver.port}/hook").stdout.splitlines()
        hook_id, secret = added[0], added[1].split()[1]
        personalize = srv.client("personalize")
        group = personalize.create_dataset_group(name=unique("made"))["datasetGroupArn"]
        (created,) = wait_for(lambda: [e for e in receiver.events() if e["detail"]["resourceArn"] == group
                                       and e["detail"]["status"] == "ACTIVE"])
        assert created["detail-type"] == "Dataset Group State Change"
        steps = [(e["detail"]["previousStatus"], e["detail"]["status"]) for e in receiver.events()
                 if e["detail"]["resourceArn"] == group]
        assert steps[0] == (None, "CREATE PENDING")  # every step, all made inside CreateDatasetGroup
        personalize.delete_dataset_group(datasetGroupArn=group)
        wait_for(lambda: any(e["detail"]["resourceArn"] == group and e["detail"]["status"] == "DELETED"
                             for e in receiver.events()))
        headers, body = next((h, b) for h, b in receiver.received if json.loads(b)["id"] == created["id"])
        stamp, mac = (part.split("=", 1)[1] for part in headers["x-tastemaker-signature"].split(","))
        assert hmac.compare_digest(mac, hmac.new(secret.encode(), f"{stamp}.".encode() + body,
                                                 hashlib.sha256).hexdigest())
        stored = sqlite3.connect(srv.data_dir / "tastemaker.db").execute(
            "SELECT secret FROM webhooks WHERE id = ?", (hook_id,)).fetchone()[0]
        assert secret not in stored and stored.startswith("v1:")
        assert secret not in srv.log_path.read_text(errors="replace")
    finally:
        receiver.stop()
        cli(srv, "remove", hook_id)
