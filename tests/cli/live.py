"""One live server shared by tests/cli and tests/examples (each conftest's session fixture holds a reference)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tastemaker.cli.local_server import LocalServer

_server: LocalServer | None = None
_users = 0


def acquire() -> LocalServer:
    global _server, _users
    if _server is None:
        _server = LocalServer(Path(tempfile.mkdtemp(prefix="tastemaker-cli-tests-")))
        _server.start()
    _users += 1
    return _server


def release() -> None:
    """Stop the server when the last session fixture that holds it is torn down (at the end of the session)."""
    global _server, _users
    _users -= 1
    if _users == 0 and _server is not None:
        _server.stop()
        shutil.rmtree(_server.data_dir, ignore_errors=True)
        _server = None
