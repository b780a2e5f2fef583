"""The first start of a server: the generated root key is kept in DATA_DIR/credentials.json, and its secret
never reaches a log (stdout that is not a terminal) -- only an interactive terminal is shown the snippet."""

from __future__ import annotations

import io
import json
from pathlib import Path

from tastemaker.api.keys import AccessKey, KeyStore
from tastemaker.cli.local_server import LocalServer
from tastemaker.cli.wiring import announce_key
from tastemaker.config import Settings


def test_a_server_whose_output_is_logged_does_not_print_the_generated_secret(tmp_path: Path) -> None:
    server = LocalServer(tmp_path / "data", env={"TASTEMAKER_ACCESS_KEY_ID": "", "TASTEMAKER_SECRET_ACCESS_KEY": ""})
    with server:
        key = json.loads((server.data_dir / "credentials.json").read_text())["keys"][0]
    log = server.log_path.read_text()
    assert key["secret_access_key"] not in log
    assert str(server.data_dir / "credentials.json") in log  # says where the key is
    assert key["access_key_id"] in log


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_an_interactive_terminal_gets_the_ready_to_paste_snippet(tmp_path: Path) -> None:
    keys = KeyStore([AccessKey("TMKEXAMPLE0000000001", "s3cret-example")], created=True)
    terminal = _Terminal()
    announce_key(keys, Settings(data_dir=tmp_path), terminal)
    assert "aws_secret_access_key='s3cret-example'" in terminal.getvalue()
