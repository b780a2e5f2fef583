"""Two admins disabling each other's keys at the same moment (PostgreSQL, and SQLite): one wins, the other is refused, and an
enabled admin key always remains while the root key is disabled (tastemaker.store.access_keys.lock_changes).

The race is forced, not hoped for: each `tastemaker keys disable` waits, right after its keep-an-admin check has
read the keys, until the other has read them too (a barrier with a timeout). Without the lock both checks read
"the other admin key is enabled" and both disable; with it the second waits at the lock, the first's barrier
times out, it commits, and the second reads the first's change and refuses. On SQLite the second waits at its
BEGIN IMMEDIATE instead.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tastemaker.cli import keys as cli_keys
from tastemaker.cli.main import _settings, build_parser
from tastemaker.errors import ResourceInUseException
from tastemaker.store import access_keys, db
from tests.e2e.test_access_keys import keys_cli


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own: the test disables the root key, which other tests on the shared one rely on."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'keys.db'}"
        return
    postgres_url = request.getfixturevalue("postgres_url")
    name = f"tm_keys_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_concurrent_disables_leave_an_enabled_admin_key(tmp_path: Path, own_database: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "state"
    for name in ("admin-a", "admin-b"):
        assert keys_cli(data_dir, "create", "--name", name, "--admin", db_url=own_database)[0] == 0
    assert keys_cli(data_dir, "disable", "root", db_url=own_database)[0] == 0

    both_read = threading.Barrier(2)
    read_admins = cli_keys._admins

    def admins_then_wait(conn: sa.Connection, besides: str | None) -> list[str]:
        found = read_admins(conn, besides)
        try:
            both_read.wait(timeout=3)  # hold the transaction open until the other check has read too
        except threading.BrokenBarrierError:
            pass  # the other is waiting at the lock: it reads after this one commits
        return found

    monkeypatch.setattr(cli_keys, "_admins", admins_then_wait)
    settings = _settings(build_parser().parse_args(["keys", "list", "--data-dir", str(data_dir),
                                                    "--db-url", own_database]))
    engine = db.create_engine(settings.resolved_db_url)
    outcomes: dict[str, Any] = {}

    def disable(key: str) -> None:
        try:
            cli_keys.disable(engine, settings, build_parser().parse_args(["keys", "disable", key]))
            outcomes[key] = "disabled"
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            outcomes[key] = exc

    try:
        threads = [threading.Thread(target=disable, args=(key,)) for key in ("admin-a", "admin-b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        with engine.connect() as conn:
            enabled = {row.name for row in access_keys.list_all(conn) if row.enabled}
    finally:
        engine.dispose()

    assert sorted(str(v) if v == "disabled" else type(v).__name__ for v in outcomes.values()) == [
        "ResourceInUseException", "disabled"], outcomes
    refused = next(v for v in outcomes.values() if isinstance(v, ResourceInUseException))
    assert "last enabled admin key" in str(refused)
    assert len(enabled & {"admin-a", "admin-b"}) == 1 and "root" not in enabled
