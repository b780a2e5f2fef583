"""Reads of a user's or session's recent events from the `events` table, bounded by a window per source.

A user's recent events come from sources: the rows carrying the id as userId, the rows carrying it as
sessionId, and the anonymous rows of the user's newest sessions (session stitching). Each source is read as
its newest rows by arrival (ORDER BY id DESC LIMIT window, a backward walk of the (group, user_id, id) or
(group, session_id, id) index), so the work per read is bounded by the windows, however many events a shared
session holds (a backend that sends one fixed sessionId for everybody). A probe asks each source only for
rows newer than the caller's cursor, within a smaller window; a probe that fills a window tells the caller
to read in full.

PostgreSQL hands out ids before commit, so a lower id can become visible after a higher one: "id > newest"
would miss it. There a probe asks instead for the window's rows written by every transaction that had not
finished when the previous probe's snapshot was taken: xid >= that snapshot's xmin (every older transaction
had ended, so its rows were already visible then). age() compares the rows' 32-bit xids wraparound-safely; a
frozen row's age is the maximum, so it never matches. The snapshot's xmin comes back with the rows (same
statement, same snapshot), or from a statement before the full read (an earlier xmin is only more
conservative).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OWN_WINDOW = 1000  # newest rows read of the id as userId, and of the id as sessionId
STITCH_WINDOW = 200  # newest rows read of each stitched session (its anonymous ones among them count)
PROBE_WINDOW = 100  # newest rows a probe reads per source; a full window means "read in full instead"

Row = tuple[int, "str | None", str, float, "float | None"]  # id, item, type, sent_at, value

_PG_HORIZON_SQL = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text"
_SQLITE_HORIZON_SQL = "SELECT COALESCE(MAX(id), 0) FROM events"  # ids are handed out in commit order
# A user's newest sessions among their newest rows (a session whose anonymous events count as the user's).
_SESSIONS_SQL = """
SELECT session_id FROM (
  SELECT session_id, id FROM events WHERE dataset_group_arn = {p} AND user_id = {p} ORDER BY id DESC LIMIT {p}
) newest GROUP BY session_id ORDER BY MAX(id) DESC LIMIT {p}
"""
_WINDOW = ("SELECT id FROM (SELECT id FROM events WHERE dataset_group_arn = {p} AND {column} = {p} "
           "ORDER BY id DESC LIMIT {p}) w{n}")
_ANONYMOUS = ("SELECT id FROM (SELECT id, user_id FROM events WHERE dataset_group_arn = {p} AND session_id = {p} "
              "ORDER BY id DESC LIMIT {p}) w{n} WHERE user_id IS NULL")
_RECENT_SQL = """
SELECT id, item_id, event_type, sent_at, event_value FROM (
  SELECT id, item_id, event_type, sent_at, event_value,
         ROW_NUMBER() OVER (PARTITION BY event_type ORDER BY sent_at DESC, id DESC) AS rn
  FROM events WHERE id IN ({sources})
) ranked
WHERE rn <= {p}
ORDER BY sent_at DESC, id DESC
"""
_COLUMNS = "id, item_id, event_type, sent_at, event_value, session_id, user_id"
# Probe of one source: SQLite walks the index range after the cursor; PostgreSQL filters the window by xmin.
_SQLITE_PROBE = ("SELECT {n} AS src, * FROM (SELECT {cols} FROM events WHERE dataset_group_arn = ? AND {column} = ? "
                 "AND id > ? ORDER BY id DESC LIMIT ?) p{n}")
_PG_PROBE = ("SELECT {n} AS src, {cols} FROM (SELECT {cols}, xmin AS x FROM events WHERE dataset_group_arn = %s "
             "AND {column} = %s ORDER BY id DESC LIMIT %s) p{n} WHERE age(x) <= age(CAST(%s::text AS xid))")
# The cursor for the next probe comes back with the rows, from the same statement (the same snapshot).
_WRAP = "SELECT h.x, n.* FROM ({}) h LEFT JOIN ({}) n ON true"
_PG_WRAP_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS x"
_SQLITE_WRAP_HORIZON = "SELECT COALESCE(MAX(id), 0) AS x FROM events"


@dataclass(frozen=True)
class FullRead:
    rows: list[Row]  # newest first, at most `limit` per event type
    sessions: tuple[str, ...]  # the stitched sessions (empty when the id never carried a userId)
    horizon: int  # the cursor for probes, taken before the read: PostgreSQL the snapshot's xmin, SQLite MAX(id)


@dataclass(frozen=True)
class Probe:
    rows: list[tuple[Row, str, str | None]]  # (row, sessionId, userId) of each new row that counts
    horizon: int  # the cursor for the next probe (the probe's snapshot: PostgreSQL xmin, SQLite MAX(id))
    overflow: bool  # a source filled its window: there may be more, read in full


class RecentEventQueries:
    """The statements of one dialect; each method runs on a DBAPI cursor its caller owns."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self.p = "%s" if postgres else "?"

    def read_full(self, cursor: Any, group: str, ident: str, limit: int, max_sessions: int) -> FullRead:
        """Newest events of `ident` as userId or sessionId plus the stitched sessions' anonymous ones."""
        p = self.p
        cursor.execute(_PG_HORIZON_SQL if self.postgres else _SQLITE_HORIZON_SQL)
        horizon = int(cursor.fetchone()[0])
        window = max(OWN_WINDOW, limit)
        cursor.execute(_SESSIONS_SQL.format(p=p), (group, ident, window, max_sessions))
        sessions = tuple(r[0] for r in cursor.fetchall())
        parts = [_WINDOW.format(p=p, column="user_id", n=0), _WINDOW.format(p=p, column="session_id", n=1)]
        params: list[Any] = [group, ident, window, group, ident, window]
        for n, session in enumerate(sessions, start=2):
            parts.append(_ANONYMOUS.format(p=p, n=n))
            params += [group, session, STITCH_WINDOW]
        cursor.execute(_RECENT_SQL.format(p=p, sources=" UNION ".join(parts)), (*params, limit))
        return FullRead([_row(r) for r in cursor.fetchall()], sessions, horizon)

    def probe(self, cursor: Any, group: str, ident: str, sessions: tuple[str, ...], horizon: int) -> Probe:
        """Rows that arrived after the cursor `horizon` (SQLite: id > it; PostgreSQL: written by transactions
        that had not finished at it) in each source's newest PROBE_WINDOW rows. The cursor moves past every row
        of the sources, also those that do not count (a shared session's rows of other users)."""
        sources = [("user_id", ident), ("session_id", ident)] + [("session_id", s) for s in sessions]
        parts, params = [], []
        after: Any = str(horizon % 2**32) if self.postgres else horizon  # PostgreSQL: a 32-bit xid
        for n, (column, value) in enumerate(sources):
            if self.postgres:
                parts.append(_PG_PROBE.format(n=n, cols=_COLUMNS, column=column))
                params += [group, value, PROBE_WINDOW, after]
            else:
                parts.append(_SQLITE_PROBE.format(n=n, cols=_COLUMNS, column=column))
                params += [group, value, after, PROBE_WINDOW]
        wrap = _PG_WRAP_HORIZON if self.postgres else _SQLITE_WRAP_HORIZON
        cursor.execute(_WRAP.format(wrap, " UNION ALL ".join(parts)), params)
        found = cursor.fetchall()
        horizon = int(found[0][0])
        found = [r[1:] for r in found if r[1] is not None]
        per_source: dict[int, int] = {}
        rows = []
        for r in found:
            per_source[r[0]] = per_source.get(r[0], 0) + 1
            if r[0] < 2 or r[7] is None:  # a stitched session's rows count only when anonymous
                rows.append((_row(r[1:6]), r[6], r[7]))
        return Probe(rows, horizon, any(n >= PROBE_WINDOW for n in per_source.values()))


def _row(r: Any) -> Row:
    return (int(r[0]), r[1], r[2], float(r[3]), None if r[4] is None else float(r[4]))
