"""Access-key rows: list, fetch, insert, update and delete keys (secrets arrive here already encrypted)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from tastemaker.errors import ResourceAlreadyExistsException, ResourceNotFoundException
from tastemaker.store.tables import access_keys
from tastemaker.store.wakeups import notify

ROOT_ID = "root"  # the row that records the state of the root key (its secret lives outside the database)
CHANGE_LOCK = 0x746D6B79  # PostgreSQL advisory lock key taken by lock_changes() ("tmky")


@dataclass(frozen=True)
class AccessKeyRow:
    access_key_id: str
    name: str
    is_root: bool
    enabled: bool
    policy: dict[str, Any] | None
    secret_ciphertext: str | None
    previous_secret_ciphertext: str | None
    previous_expires_at: float | None
    version: int
    created_at: float
    updated_at: float


def _row(row: Any) -> AccessKeyRow:
    policy = row.policy if row.policy is None or isinstance(row.policy, dict) else orjson.loads(row.policy)
    return AccessKeyRow(row.access_key_id, row.name, bool(row.is_root), bool(row.enabled), policy,
                        row.secret_ciphertext, row.previous_secret_ciphertext, row.previous_expires_at,
                        int(row.version), row.created_at, row.updated_at)


def lock_changes(conn: sa.Connection) -> None:
    """Serialise the transactions that enable, disable or delete keys, so a check such as "another enabled admin
    key remains" reads what every earlier change committed. PostgreSQL: a transaction-scoped advisory lock (the
    next changer waits at this call; under READ COMMITTED its later reads then see the first one's commit).
    SQLite: every write transaction already begins with BEGIN IMMEDIATE (tastemaker.store.db), one at a time."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHANGE_LOCK})


def list_all(conn: sa.Connection) -> list[AccessKeyRow]:
    """Every key, the root row included, oldest first."""
    rows = conn.execute(sa.select(access_keys).order_by(access_keys.c.created_at, access_keys.c.access_key_id))
    return [_row(r) for r in rows]


def get(conn: sa.Connection, key: str) -> AccessKeyRow:
    """A key by access key id or name; ResourceNotFoundException when there is none."""
    row = conn.execute(sa.select(access_keys).where(
        sa.or_(access_keys.c.access_key_id == key, access_keys.c.name == key))).first()
    if row is None:
        raise ResourceNotFoundException(f"No access key has the id or name {key!r}; `tastemaker keys list` "
                                        "shows them.")
    return _row(row)


def find(conn: sa.Connection, key: str) -> AccessKeyRow | None:
    try:
        return get(conn, key)
    except ResourceNotFoundException:
        return None


def insert(conn: sa.Connection, *, access_key_id: str, name: str, policy: dict[str, Any] | None,
           secret_ciphertext: str | None, is_root: bool = False, enabled: bool = True) -> AccessKeyRow:
    """Add a key; a taken name or id raises ResourceAlreadyExistsException."""
    taken = conn.execute(sa.select(access_keys.c.access_key_id).where(
        sa.or_(access_keys.c.access_key_id == access_key_id, access_keys.c.name == name))).first()
    if taken:
        raise ResourceAlreadyExistsException(f"An access key named {name!r} already exists.")
    ts = time.time()
    conn.execute(access_keys.insert().values(
        access_key_id=access_key_id, name=name, is_root=is_root, enabled=enabled, policy=policy,
        secret_ciphertext=secret_ciphertext, version=1, created_at=ts, updated_at=ts))
    notify(conn, "keys")  # every API process re-reads its keys when this commits (store/wakeups.py)
    return get(conn, access_key_id)


def update(conn: sa.Connection, access_key_id: str, **values: Any) -> AccessKeyRow:
    """Change columns of a key (enabled, secret_ciphertext, previous_*) and bump its version."""
    done = conn.execute(access_keys.update().where(access_keys.c.access_key_id == access_key_id).values(
        version=access_keys.c.version + 1, updated_at=time.time(), **values))
    if not done.rowcount:
        raise ResourceNotFoundException(f"No access key has the id {access_key_id!r}.")
    notify(conn, "keys")
    return get(conn, access_key_id)


def delete(conn: sa.Connection, access_key_id: str) -> None:
    done = conn.execute(access_keys.delete().where(access_keys.c.access_key_id == access_key_id))
    if not done.rowcount:
        raise ResourceNotFoundException(f"No access key has the id {access_key_id!r}.")
    notify(conn, "keys")


def root(conn: sa.Connection) -> AccessKeyRow:
    """The root key's row, created (enabled) on first use."""
    found = find(conn, ROOT_ID)
    return found or insert(conn, access_key_id=ROOT_ID, name=ROOT_ID, policy=None, secret_ciphertext=None,
                           is_root=True)
