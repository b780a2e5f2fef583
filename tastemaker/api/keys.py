"""Access keys: the root key from the environment, or one generated on first start and kept in the data dir."""

from __future__ import annotations

import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

import orjson

from tastemaker.config import Settings

KEY_FILE = "credentials.json"


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str


def _new_key() -> AccessKey:
    alphabet = string.ascii_uppercase + string.digits
    akid = "TMK" + "".join(secrets.choice(alphabet) for _ in range(17))
    secret = secrets.token_urlsafe(30)[:40]
    return AccessKey(akid, secret)


class KeyStore:
    """Known access keys. `created` tells whether this start generated the root key (print it once)."""

    def __init__(self, keys: list[AccessKey], created: bool = False) -> None:
        self._secrets = {k.access_key_id: k.secret_access_key for k in keys}
        self.root = keys[0]
        self.created = created

    def secret_for(self, access_key_id: str) -> str | None:
        return self._secrets.get(access_key_id)

    @classmethod
    def load(cls, settings: Settings) -> KeyStore:
        if settings.access_key_id and settings.secret_access_key:
            return cls([AccessKey(settings.access_key_id, settings.secret_access_key)])
        path = settings.data_dir / KEY_FILE
        if path.exists():
            data = orjson.loads(path.read_bytes())
            return cls([AccessKey(k["access_key_id"], k["secret_access_key"]) for k in data["keys"]])
        key = _new_key()
        _write_private(path, orjson.dumps({"keys": [key.__dict__]}, option=orjson.OPT_INDENT_2))
        return cls([key], created=True)


def _write_private(path: Path, data: bytes) -> None:
    """Create the file with mode 0600 from the start (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def boto3_snippet(key: AccessKey, endpoint: str, region: str) -> str:
    return (
        "import boto3\n"
        f"session = boto3.Session(aws_access_key_id={key.access_key_id!r},\n"
        f"                        aws_secret_access_key={key.secret_access_key!r},\n"
        f"                        region_name={region!r})\n"
        f"personalize = session.client('personalize', endpoint_url={endpoint!r})\n"
        f"runtime = session.client('personalize-runtime', endpoint_url={endpoint!r})\n"
        f"events = session.client('personalize-events', endpoint_url={endpoint!r})\n"
    )
