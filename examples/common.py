"""Shared set-up for the examples: boto3 clients for a Tastemaker server, and polling helpers.

Configuration (environment variables):
  TASTEMAKER_ENDPOINT   server URL (default http://127.0.0.1:8080)
  AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY   the server's key; when unset, the key file
                        $TASTEMAKER_DATA_DIR/credentials.json (default ./.tastemaker) is read
  EXAMPLE_NAME          prefix of every resource the examples create (default "example")
  TASTEMAKER_IMPORT_DIR a folder the server may import from (default $TASTEMAKER_DATA_DIR/imports)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import boto3

ENDPOINT = os.environ.get("TASTEMAKER_ENDPOINT", "http://127.0.0.1:8080")
DATA_DIR = Path(os.environ.get("TASTEMAKER_DATA_DIR", ".tastemaker"))
NAME = os.environ.get("EXAMPLE_NAME", "example")
IMPORT_DIR = Path(os.environ.get("TASTEMAKER_IMPORT_DIR", DATA_DIR / "imports")).resolve()
RECIPE = "arn:aws:personalize:::recipe/"
# Import job names stay taken after their dataset is deleted: a per-run suffix lets the examples run again.
RUN = time.strftime("%Y%m%d-%H%M%S")


def session() -> boto3.Session:
    """Personalize code needs nothing else than endpoint_url (and the server's key) to talk to Tastemaker."""
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    key_file = DATA_DIR / "credentials.json"
    if not (key and secret) and key_file.exists():
        first = json.loads(key_file.read_text())["keys"][0]
        key, secret = first["access_key_id"], first["secret_access_key"]
    return boto3.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                         region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))


def personalize():  # type: ignore[no-untyped-def]
    return session().client("personalize", endpoint_url=ENDPOINT)


def runtime():  # type: ignore[no-untyped-def]
    return session().client("personalize-runtime", endpoint_url=ENDPOINT)


def events():  # type: ignore[no-untyped-def]
    return session().client("personalize-events", endpoint_url=ENDPOINT)


def wait_active(describe, key: str, timeout: float = 600) -> dict:  # type: ignore[no-untyped-def]
    """Poll a Describe call until the resource is ACTIVE; raise with its failureReason otherwise."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = describe()[key]
        if body["status"] == "ACTIVE":
            return body
        if body["status"] in ("CREATE FAILED", "CREATE STOPPED"):
            raise RuntimeError(f"{key} {body['status']}: {body.get('failureReason')}")
        time.sleep(0.25)
    raise TimeoutError(f"{key} not ACTIVE after {timeout}s")


def wait_gone(describe, timeout: float = 600) -> None:  # type: ignore[no-untyped-def]
    """Deletes are asynchronous: poll until Describe answers ResourceNotFoundException."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            describe()
        except Exception as exc:  # botocore's modelled exception classes differ per client
            if getattr(exc, "response", {}).get("Error", {}).get("Code") == "ResourceNotFoundException":
                return
            raise
        time.sleep(0.25)
    raise TimeoutError("still not deleted")


def find(client, method: str, key: str, name: str, arn_key: str, **params) -> str | None:  # type: ignore[no-untyped-def]
    """The ARN of the resource called `name` in a List* result (all pages), or None."""
    for page in client.get_paginator(method).paginate(**params):
        for item in page[key]:
            if item["name"] == name:
                return str(item[arn_key])
    return None


def group_arn(client, name: str = NAME) -> str:  # type: ignore[no-untyped-def]
    arn = find(client, "list_dataset_groups", "datasetGroups", name, "datasetGroupArn")
    if arn is None:
        raise SystemExit(f"No dataset group {name!r}; run 01_create_dataset_group.py first.")
    return arn
