"""Endpoint and credential resolution for the client-side commands (quickstart, cleanup) and boto3 clients."""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
DEFAULT_DATA_DIR = Path(".tastemaker")
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class Credentials:
    """Where a key came from matters when it is wrong, so keep the source for messages."""

    access_key_id: str | None
    secret_access_key: str | None
    source: str


def resolve_credentials(data_dir: Path | None = None) -> Credentials:
    """The server's root key: TASTEMAKER_* env, then DATA_DIR/credentials.json, then AWS_* env / the AWS chain."""
    akid, secret = os.environ.get("TASTEMAKER_ACCESS_KEY_ID"), os.environ.get("TASTEMAKER_SECRET_ACCESS_KEY")
    if akid and secret:
        return Credentials(akid, secret, "TASTEMAKER_ACCESS_KEY_ID / TASTEMAKER_SECRET_ACCESS_KEY")
    key_file = Path(data_dir or os.environ.get("TASTEMAKER_DATA_DIR") or DEFAULT_DATA_DIR) / "credentials.json"
    if key_file.exists():
        keys = json.loads(key_file.read_text()).get("keys") or []
        if keys:
            return Credentials(keys[0]["access_key_id"], keys[0]["secret_access_key"], str(key_file))
    # None lets boto3 use its own chain (AWS_ACCESS_KEY_ID, ~/.aws/credentials, a profile).
    return Credentials(None, None, "the standard AWS credential chain")


def require_credentials(credentials: Credentials, data_dir: Path | None) -> Credentials:
    """Fail with what to do when neither the server's key nor an AWS key can be found."""
    if credentials.access_key_id is None:
        import boto3

        if boto3.Session().get_credentials() is None:
            where = Path(data_dir or DEFAULT_DATA_DIR) / "credentials.json"
            raise SystemExit(
                f"No key for the server: {where} does not exist and no AWS credentials are set. Run this from the "
                "folder where the server runs (`make run` keeps its key in ./.tastemaker), pass --data-dir, or "
                "set TASTEMAKER_ACCESS_KEY_ID and TASTEMAKER_SECRET_ACCESS_KEY.")
    return credentials


def program() -> str:
    """How to run `tastemaker` again from this shell: `tastemaker` when that name on PATH is this program, else the
    path it was started by (e.g. `.venv/bin/tastemaker` after `make install`), else `python -m ...`."""
    started = sys.argv[0] if sys.argv else ""
    if Path(started).name == "tastemaker":
        on_path = shutil.which("tastemaker")
        if on_path and Path(on_path).resolve() == Path(started).resolve():
            return "tastemaker"
        return started if "/" in started else f"./{started}"
    return f"{sys.executable} -m tastemaker.cli.main"


def resolve_endpoint(endpoint: str | None = None) -> str:
    return (endpoint or os.environ.get("TASTEMAKER_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def server_answers(endpoint: str, timeout: float = 1.5) -> bool:
    """True when a Tastemaker server answers GET /ping at `endpoint`."""
    try:
        with urllib.request.urlopen(endpoint + "/ping", timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass
class Clients:
    """The three Personalize clients pointed at one endpoint."""

    endpoint: str
    region: str
    credentials: Credentials
    personalize: Any
    runtime: Any
    events: Any


def make_clients(endpoint: str, credentials: Credentials, region: str | None = None) -> Clients:
    import boto3
    from botocore.config import Config

    region = region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or DEFAULT_REGION
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=120)
    session = boto3.Session(aws_access_key_id=credentials.access_key_id,
                            aws_secret_access_key=credentials.secret_access_key, region_name=region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint, config=config)

    return Clients(endpoint, region, credentials, client("personalize"), client("personalize-runtime"),
                   client("personalize-events"))


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError (None for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or "") or None
    return None


def is_not_implemented(exc: BaseException) -> bool:
    return error_code(exc) == "NotImplementedException"


def format_call(client: str, operation: str, **params: Any) -> str:
    """How the call reads in Python, e.g. personalize.create_dataset_group(name='movies')."""
    shown = []
    for key, value in params.items():
        text = repr(value)
        if isinstance(value, str) and len(text) > 130:  # ARNs and paths stay whole; schemas are cut
            text = text[:80] + "...'"
        elif not isinstance(value, str) and len(text) > 240:
            text = text[:200] + " ...}"
        shown.append(f"{key}={text}")
    return f"{client}.{operation}({', '.join(shown)})"
