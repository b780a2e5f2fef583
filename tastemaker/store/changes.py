"""The change counter: how serving learns, with one primary-key read, that a resource it keeps in memory changed.

Serving caches campaign, recommender, filter and event-tracker rows (WATCHED_KINDS) and compares them with the
change stamps -- (status, updated_at) per row -- that its change watch reads (serving/deployments.py). Reading
every stamp is a scan of those rows; doing it every 50 ms in every worker costs CPU that grows with the number
of resources. Instead every insert, update or delete of a watched row bumps one counter row in the *same
transaction* (store/resources.py calls `bump`), so:

- a reader that sees counter value N also sees every watched change committed before N was (the bump and the
  change commit together; PostgreSQL's row lock on the counter orders concurrent bumps, SQLite has one writer);
- the watch reads the counter first and scans the stamps only when it moved, recording the counter it read
  *before* the scan: a change committed between the two reads is in the scan or moves the counter again, so it
  is never missed, only re-read once more.

Lock order (PostgreSQL): the counter row is a lock every writer of a watched row takes. So that two such writers
can never deadlock (one holding a resource row and waiting for the counter, the other the reverse), the counter
is always locked *before* a watched resource row: `lock` runs first in resources.insert, resources.delete and
every resources.get(lock=True) of a watched ARN (which resources.update uses), and `bump` comes after.

The counter is a table row, not a sequence: a sequence advances outside the transaction, so a reader could see
the new number before the change it stands for commits and record it as seen.
"""

from __future__ import annotations

import sqlalchemy as sa

from tastemaker.store.tables import change_counter
from tastemaker.store.wakeups import notify

WATCHED_KINDS = ("campaign", "recommender", "filter", "event_tracker")  # the rows serving keeps in memory
_WATCHED_ARN_PARTS = tuple(f":{kind.replace('_', '-')}/" for kind in WATCHED_KINDS)  # ...:campaign/name
_READ = sa.select(change_counter.c.value).where(change_counter.c.id == 1)
_LOCK = _READ.with_for_update()
_BUMP = change_counter.update().where(change_counter.c.id == 1).values(value=change_counter.c.value + 1)


def watched_arn(arn: str) -> bool:
    """Whether this ARN names a campaign, recommender, filter or event tracker."""
    return any(part in arn for part in _WATCHED_ARN_PARTS)


def lock(conn: sa.Connection) -> None:
    """Take the counter's row lock (PostgreSQL; SQLite has one writer) before locking a watched resource row."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK)


def bump(conn: sa.Connection) -> None:
    """Count one change to a watched row; call inside the transaction that makes the change (which also wakes
    every process's change watch when it commits: store/wakeups.py)."""
    conn.execute(_BUMP)
    notify(conn, "changes")


def read(conn: sa.Connection) -> int:
    """The counter now (committed changes only)."""
    return int(conn.execute(_READ).scalar_one())
