"""End-to-end: bad input is refused at the call with the AWS error class, never stored to fail later.

Covers out-of-range event and import values (and a training that meets such values already stored), bad
nextToken numbers, NUL characters (SQLite and PostgreSQL), deeply nested schemas, http(s) and hidden `..`
import locations, and request bodies larger than their operation can carry (refused before being read).
"""

from __future__ import annotations

import base64
import json
import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.util import wait_status

RECIPE = "arn:aws:personalize:::recipe/"
FAKE_DATASET = "arn:aws:personalize:us-east-1:000000000000:dataset/nope/INTERACTIONS"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error(call: Callable[[], Any]) -> tuple[str, str, int]:
    """(code, message, HTTP status) of the ClientError that `call` raises."""
    with pytest.raises(ClientError) as exc:
        call()
    response = exc.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def with_raw_number(client: Any, operation: str, placeholder: int, raw: str) -> None:
    """Make `client` send the JSON number `raw` where a request carries `placeholder` (botocore itself cannot
    serialise timestamps such as 1e19): the body is rewritten before it is signed."""
    service = client.meta.service_model.service_name

    def rewrite(request: Any, **_: Any) -> None:
        request.data = request.body.replace(str(placeholder).encode(), raw.encode())

    client.meta.events.register(f"before-sign.{service}.{operation}", rewrite)


@pytest.fixture(scope="module")
def group(personalize, import_root: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    data = write_dataset(import_root / "bad-input", users=60, per_user=20)
    arn = personalize.create_dataset_group(name=unique("bad"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    schema = personalize.create_schema(name=unique("bad"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = personalize.create_dataset(name=unique("bad"), schemaArn=schema, datasetGroupArn=arn,
                                         datasetType="Interactions")["datasetArn"]
    wait_status(lambda: personalize.describe_dataset(datasetArn=dataset), "dataset")
    job = personalize.create_dataset_import_job(jobName=unique("imp"), datasetArn=dataset,
                                                dataSource={"dataLocation": str(data["interactions"])})
    done = wait_status(lambda: personalize.describe_dataset_import_job(
        datasetImportJobArn=job["datasetImportJobArn"]), "datasetImportJob")
    assert done["status"] == "ACTIVE", done.get("failureReason")
    tracker = personalize.create_event_tracker(name=unique("tracker"), datasetGroupArn=arn)
    wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]),
                "eventTracker")
    return {"arn": arn, "dataset": dataset, "tracking_id": tracker["trackingId"], "data": data}


# --- item 5: values outside Personalize's ranges -------------------------------------------------------


@pytest.mark.parametrize(("member", "raw", "named"), [
    ("sentAt", "1e19", "sentAt"),
    ("sentAt", "-1e19", "sentAt"),
    ("sentAt", "1700000000000", "milliseconds"),  # milliseconds, not seconds
    ("eventValue", "1e300", "eventValue"),
])
def test_out_of_range_event_values_are_refused(server, group, member: str, raw: str, named: str) -> None:  # type: ignore[no-untyped-def]
    events = server.client("personalize-events")
    placeholder = 1_234_567_891 if member == "sentAt" else 987_654_321
    with_raw_number(events, "PutEvents", placeholder, raw)
    event: dict[str, Any] = {"eventType": "click", "itemId": "i1", "sentAt": 1_700_000_000}
    event[member] = placeholder
    code, message, status = error(lambda: events.put_events(
        trackingId=group["tracking_id"], userId="u1", sessionId=unique("s"), eventList=[event]))
    assert (code, status) == ("InvalidInputException", 400)
    assert named in message


def test_training_succeeds_after_odd_but_valid_events_and_skips_bad_stored_ones(  # type: ignore[no-untyped-def]
        server, personalize, events, group) -> None:
    session = unique("s")
    events.put_events(trackingId=group["tracking_id"], userId="u1", sessionId=session, eventList=[
        {"eventType": "click", "itemId": "i1", "sentAt": 0},
        {"eventType": "click", "itemId": "i2", "sentAt": 253402300799.5, "eventValue": -3.4e38},
        {"eventType": "click", "itemId": "i3", "sentAt": 1_700_000_000.999, "eventValue": 3.4e38},
    ])
    # A value written before the edge checked ranges (an older server) must not stop training either.
    with sqlite3.connect(server.data_dir / "tastemaker.db") as db:
        db.execute("INSERT INTO events (dataset_group_arn, event_id, session_id, user_id, item_id, event_type, "
                   "event_value, sent_at, record, received_at) VALUES (?, ?, ?, 'u1', 'i1', 'click', NULL, 1e19, "
                   "?, 0)", (group["arn"], unique("legacy"), session,
                             json.dumps({"USER_ID": "u1", "ITEM_ID": "i1", "EVENT_TYPE": "click",
                                         "TIMESTAMP": 10**19})))
    solution = personalize.create_solution(name=unique("pop"), datasetGroupArn=group["arn"],
                                           recipeArn=RECIPE + "aws-popularity-count")["solutionArn"]
    wait_status(lambda: personalize.describe_solution(solutionArn=solution), "solution")
    version = personalize.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    done = wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version),
                       "solutionVersion", timeout=300)
    assert done["status"] == "ACTIVE", done.get("failureReason")


def test_import_with_an_out_of_range_timestamp_fails_naming_the_row(personalize, group, import_root) -> None:  # type: ignore[no-untyped-def]
    lines = group["data"]["interactions"].read_text().splitlines()
    user, item, _ts, event_type, value = lines[5].split(",")
    lines[5] = f"{user},{item},9000000000000000000,{event_type},{value}"
    path = import_root / "bad-input" / "far-future.csv"
    path.write_text("\n".join(lines) + "\n")
    job = personalize.create_dataset_import_job(jobName=unique("imp"), datasetArn=group["dataset"],
                                                dataSource={"dataLocation": str(path)}, importMode="INCREMENTAL")
    done = wait_status(lambda: personalize.describe_dataset_import_job(
        datasetImportJobArn=job["datasetImportJobArn"]), "datasetImportJob")
    assert done["status"] == "CREATE FAILED"
    reason = done["failureReason"]
    assert "line 6" in reason and "TIMESTAMP" in reason and "epoch seconds" in reason, reason


# --- item 9: the AWS error class at the call -------------------------------------------------------------


@pytest.mark.parametrize("after", [1e300, -1, 1.5, 2**64, "12", True])
def test_next_tokens_with_bad_numbers_are_invalid(personalize, after: object) -> None:  # type: ignore[no-untyped-def]
    token = base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()
    code, _, status = error(lambda: personalize.list_dataset_groups(nextToken=token))
    assert (code, status) == ("InvalidNextTokenException", 400)


def test_deeply_nested_schema_is_invalid_input(personalize) -> None:  # type: ignore[no-untyped-def]
    schema = ('{"type": "record", "name": "Interactions", "fields": [{"name": "X", "type": '
              + "[" * 3000 + "]" * 3000 + "}]}")
    code, message, _ = error(lambda: personalize.create_schema(name=unique("deep"), schema=schema))
    assert code == "InvalidInputException" and "levels" in message


@pytest.mark.parametrize("location", [
    "http://example.com/data.csv",
    "https://example.com/folder/",
    "file:///{root}/%2e%2e/%2e%2e/etc/passwd",
    "file:///{root}/%2E%2E/secret.csv",
])
def test_unreadable_import_locations_are_refused_at_the_call(personalize, import_root, location: str) -> None:  # type: ignore[no-untyped-def]
    location = location.format(root=str(import_root).lstrip("/"))
    code, message, _ = error(lambda: personalize.create_dataset_import_job(
        jobName=unique("imp"), datasetArn=FAKE_DATASET, dataSource={"dataLocation": location}))
    assert code == "InvalidInputException", message


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db_server(request, server, tmp_path_factory) -> Iterator[LocalServer]:  # type: ignore[no-untyped-def]
    """The session's SQLite server, or a server of its own on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield server
        return
    url = request.getfixturevalue("postgres_url")
    srv = LocalServer(tmp_path_factory.mktemp("pg-server"), env={"TASTEMAKER_DB_URL": url})
    srv.start()
    yield srv
    srv.stop()


def test_nul_characters_are_invalid_input_on_every_database(any_db_server) -> None:  # type: ignore[no-untyped-def]
    personalize = any_db_server.client("personalize")
    runtime = any_db_server.client("personalize-runtime")
    events = any_db_server.client("personalize-events")
    arn = "arn:aws:personalize:us-east-1:000000000000:dataset-group/a\x00b"
    calls = [
        lambda: personalize.describe_dataset_group(datasetGroupArn=arn),
        lambda: personalize.list_datasets(datasetGroupArn=arn),
        lambda: personalize.create_dataset_import_job(jobName=unique("imp"), datasetArn=FAKE_DATASET,
                                                      dataSource={"dataLocation": "s3://bucket/a\x00.csv"}),
        lambda: runtime.get_recommendations(
            campaignArn="arn:aws:personalize:us-east-1:000000000000:campaign/c", userId="u\x00"),
        lambda: events.put_events(trackingId="t\x00", sessionId="s", eventList=[
            {"eventType": "click", "sentAt": 1_700_000_000}]),
    ]
    for call in calls:
        code, message, status = error(call)
        assert (code, status) == ("InvalidInputException", 400), message
        assert "NUL" in message
    assert personalize.list_dataset_groups()["ResponseMetadata"]["HTTPStatusCode"] == 200


# --- item 7: bodies larger than the operation can carry ---------------------------------------------------


def _read_reply(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    return int(head.split(b" ", 2)[1]), json.loads(body)


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_unsigned_huge_body_is_refused_before_it_is_read(server, personalize) -> None:  # type: ignore[no-untyped-def]
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(30)  # a hang guard only: the server answers without waiting for the 200 MB
        sock.sendall(b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: AmazonPersonalize.CreateDatasetGroup\r\n"
                     b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 209715200\r\n\r\n{\"name\": \"")
        # While that connection holds its (never sent) body, signed requests are answered as usual.
        assert personalize.list_dataset_groups()["ResponseMetadata"]["HTTPStatusCode"] == 200
        status, body = _read_reply(sock)
    assert status == 413
    assert body["__type"] == "RequestEntityTooLargeException" and "209715200" in body["message"]


def test_unsigned_chunked_body_is_cut_off_at_the_limit(server) -> None:  # type: ignore[no-untyped-def]
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(30)
        sock.sendall(b"POST /events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        stop = threading.Event()

        def pump() -> None:
            nonlocal sent
            try:
                while not stop.is_set() and sent < 64 << 20:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
            except OSError:
                pass  # the server closed the connection after refusing

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        try:
            status, body = _read_reply(sock)
        finally:
            stop.set()
            thread.join(30)
    assert status == 413 and body["__type"] == "RequestEntityTooLargeException"
    assert sent < 64 << 20  # refused long before the client would have finished


def test_signed_oversize_request_is_refused(personalize) -> None:  # type: ignore[no-untyped-def]
    code, message, status = error(lambda: personalize.create_dataset_group(name="x" * (5 << 20)))
    assert (code, status) == ("RequestEntityTooLargeException", 413)
    assert "CreateDatasetGroup accepts at most" in message
    assert not any(g["name"].startswith("xxxx") for g in personalize.list_dataset_groups()["datasetGroups"])
