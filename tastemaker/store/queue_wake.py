"""Wake a job runner as soon as a job is enqueued, instead of leaving the job to the runner's next poll.

Runners claim jobs by polling the queue every `job_poll_seconds` (0.2 s), so a new job (a campaign deploy)
used to wait ~0.1-0.2 s before anyone looked at it. Now an enqueue, once its transaction has ended, sends one
datagram to a Unix socket in Linux's abstract namespace whose name is derived from the database URL: every
process of the host that uses that database computes the same name. The runner that bound the name (`listen`)
wakes its worker threads at once. That covers the same process (`serve`) and its siblings (`serve --workers N`:
the API worker processes enqueue, the parent process runs the jobs). A runner on another host, or a second
runner of the same database on one host (only one process can bind a name), is woken by the store instead
(store/wakeups.py: PostgreSQL's NOTIFY, SQLite's data_version), and polls while that is down; so is everything
off Linux (no abstract namespace: nothing is sent or bound).

"Once its transaction has ended": `enqueue` marks the connection (the info dict of its pool record), and the
pool's check-in hook, which runs when the connection goes back to the pool after the COMMIT (or a rollback),
sends the datagram; a runner woken before the commit would find nothing and go back to sleep. A rollback
wakes a runner for nothing: it claims nothing and waits again. Sending never blocks and never fails the
caller (no runner listening, a full socket buffer: the poll still finds the job).
"""

from __future__ import annotations

import hashlib
import logging
import socket
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

log = logging.getLogger("tastemaker.jobs")
_MARK = "tastemaker.job_enqueued"
_SUPPORTED = sys.platform.startswith("linux")
_hooked: weakref.WeakSet[Any] = weakref.WeakSet()  # pools whose check-in sends the wake-up
_hook_lock = threading.Lock()
_sender: socket.socket | None = None


def address(engine: sa.Engine) -> str:
    """The abstract socket name of this database's runner (same URL, same name, in every process)."""
    url = engine.url.render_as_string(hide_password=True)
    return "\0tastemaker-jobs-" + hashlib.sha256(url.encode()).hexdigest()[:24]


def mark(conn: sa.Connection) -> None:
    """Called inside the enqueuing transaction: wake the runner when this connection goes back to the pool."""
    if not _SUPPORTED:
        return
    pool = conn.engine.pool
    if pool not in _hooked:
        with _hook_lock:
            if pool not in _hooked:
                name = address(conn.engine)
                sa.event.listen(pool, "checkin", lambda _dbapi, record: _checked_in(record, name))
                _hooked.add(pool)
    conn.info[_MARK] = True


def _checked_in(record: Any, name: str) -> None:
    if record is not None and record.info.pop(_MARK, False):
        notify(name)


def notify(name: str) -> None:
    """Send the wake-up datagram (never blocks, never raises)."""
    global _sender
    try:
        if _sender is None:
            _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            _sender.setblocking(False)
        _sender.sendto(b"j", name)
    except OSError:  # nobody listening, or the buffer is full (the runner is already awake): the poll remains
        pass


class Listener:
    """The bound socket of one runner: `wait_loop` calls `wake` for every datagram until `stop` is set."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def wait_loop(self, wake: Callable[[], None], stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.sock.recv(64)
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            wake()

    def close(self) -> None:
        self.sock.close()


def listen(engine: sa.Engine) -> Listener | None:
    """Bind this database's wake-up socket; None when another process of this host holds it (or not Linux)."""
    if not _SUPPORTED:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(address(engine))
    except OSError as exc:
        sock.close()
        log.info("job wake-ups go to another runner of this database on this host (%s); this one polls", exc)
        return None
    sock.settimeout(0.5)  # how often the waiting thread checks for stop
    return Listener(sock)
