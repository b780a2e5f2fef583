"""Endpoint and key resolution of the client-side commands, and how calls are printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tastemaker.cli.client import (
    format_call,
    require_credentials,
    resolve_credentials,
    resolve_endpoint,
    server_answers,
)


def test_key_comes_from_env_then_key_file_then_the_aws_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TASTEMAKER_ACCESS_KEY_ID", "TASTEMAKER_SECRET_ACCESS_KEY", "TASTEMAKER_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert resolve_credentials(tmp_path).access_key_id is None  # boto3's own chain decides
    (tmp_path / "credentials.json").write_text(json.dumps({"keys": [{"access_key_id": "TMKFILE",
                                                                      "secret_access_key": "s1"}]}))
    from_file = resolve_credentials(tmp_path)
    assert (from_file.access_key_id, from_file.secret_access_key) == ("TMKFILE", "s1")
    assert from_file.source.endswith("credentials.json")
    monkeypatch.setenv("TASTEMAKER_ACCESS_KEY_ID", "TMKENV")
    monkeypatch.setenv("TASTEMAKER_SECRET_ACCESS_KEY", "s2")
    assert resolve_credentials(tmp_path).access_key_id == "TMKENV"


def test_endpoint_default_env_and_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASTEMAKER_ENDPOINT", raising=False)
    assert resolve_endpoint(None) == "http://127.0.0.1:8080"
    monkeypatch.setenv("TASTEMAKER_ENDPOINT", "http://10.0.0.5:9000/")
    assert resolve_endpoint(None) == "http://10.0.0.5:9000"
    assert resolve_endpoint("http://h:1") == "http://h:1"
    assert not server_answers("http://127.0.0.1:9", timeout=0.5)  # the discard port: nothing answers


def test_calls_print_as_python() -> None:
    assert format_call("personalize", "create_dataset_group", name="movies") == \
        "personalize.create_dataset_group(name='movies')"
    long = format_call("personalize", "create_schema", name="s", schema="x" * 500)
    assert long.startswith("personalize.create_schema(name='s', schema='xxx") and len(long) < 160


def test_a_missing_key_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TASTEMAKER_ACCESS_KEY_ID", "TASTEMAKER_SECRET_ACCESS_KEY", "TASTEMAKER_DATA_DIR",
                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(SystemExit, match="pass --data-dir"):
        require_credentials(resolve_credentials(tmp_path), tmp_path)
