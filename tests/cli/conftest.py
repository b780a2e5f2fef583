"""A live server for the client-side commands (quickstart, cleanup) and boto3 clients bound to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tastemaker.cli.client import Clients, Credentials, make_clients
from tastemaker.cli.local_server import LocalServer
from tests.cli import live


@pytest.fixture(scope="session")
def cli_server() -> Iterator[LocalServer]:
    yield live.acquire()
    live.release()


@pytest.fixture(scope="session")
def clients(cli_server: LocalServer) -> Clients:
    credentials = Credentials(cli_server.access_key, cli_server.secret_key, "test")
    return make_clients(cli_server.url, credentials, "us-east-1")


@pytest.fixture()
def server_env(cli_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> LocalServer:
    """Point the commands' credential resolution at the test server's key."""
    monkeypatch.setenv("TASTEMAKER_ACCESS_KEY_ID", cli_server.access_key)
    monkeypatch.setenv("TASTEMAKER_SECRET_ACCESS_KEY", cli_server.secret_key)
    monkeypatch.setenv("TASTEMAKER_ENDPOINT", cli_server.url)
    return cli_server
