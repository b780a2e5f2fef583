"""Logs on stderr: one line per request, one per job state change, human-readable or JSON (`--log-format`).

Every logger under `tastemaker` goes through one handler whose formatter writes either
`2026-12-06T12:00:00.123Z INFO tastemaker.jobs: message key=value ...` or one JSON object per line, the
record's structured fields (passed as `extra={"fields": {...}}`) included in both.

The request line is the hot path's cost, so it bypasses `logging` (a LogRecord, a formatter and a handler lock
cost ~10 us): `RequestLog.write` formats the line itself (the timestamp's second is cached) and appends it to a
buffer; the buffer goes to stderr in one `os.write` of whole lines (so it never interleaves with another
writer's line) once it holds `FLUSH_BYTES`, once its oldest line is `FLUSH_SECONDS` old (checked by the next
write and by a daemon thread, so a quiet server's last lines appear within that time), and at exit. One system
call per request was most of the log's cost under load; the price is that a process killed with SIGKILL loses
at most its last `FLUSH_SECONDS` of request lines, and that a request line may follow a `logging` line (job
changes, warnings) written up to `FLUSH_SECONDS` after it. It is on when the level lets INFO through.
Only what a request log needs is written: ids, the operation, the ARN, status and latency -- never headers,
bodies or secrets (the access key *id* identifies the caller; its secret is never known here).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from typing import Any

import orjson

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("text", "json")
FLUSH_BYTES = 32 * 1024  # request lines buffered before one write
FLUSH_SECONDS = 0.1  # the longest a request line waits in the buffer


_second: list[Any] = [-1, ""]  # the current second and its formatted prefix (strftime costs more than the rest)
_MILLIS = tuple(f"{ms:03d}Z" for ms in range(1000))


def _stamp(now: float) -> str:
    ms = int(now * 1000)
    second = ms // 1000
    if _second[0] != second:
        _second[0], _second[1] = second, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
    prefix: str = _second[1]
    return prefix + _MILLIS[ms - second * 1000]


class LineFormatter(logging.Formatter):
    """`time LEVEL logger: message key=value ...` (text) or a JSON object (json), with the record's fields."""

    def __init__(self, fmt: str = "text") -> None:
        super().__init__()
        self.json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", None) or {}
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        if self.json:
            return orjson.dumps({"time": _stamp(record.created), "level": record.levelname, "logger": record.name,
                                 "message": message, **fields}, default=str).decode()
        tail = "".join(f" {k}={v}" for k, v in fields.items() if v is not None)
        return f"{_stamp(record.created)} {record.levelname} {record.name}: {message}{tail}"


def _printable(value: str) -> str:
    """A client-chosen value on one line: control characters escaped, so no one can forge a log line."""
    return value if value.isprintable() and " " not in value else value.encode("unicode_escape").decode() \
        .replace(" ", "\\x20")


_TAILS: dict[tuple[str | None, str | None, str | None], str] = {}  # (arn, key id, error) -> the line's end
MAX_TAILS = 4096


def _tail(arn: str | None, access_key_id: str | None, error: str | None) -> str:
    """`arn=... access_key_id=...[ error=...]` and the newline, made printable once per distinct triple (a
    server answers the same campaign for the same key over and over); client-chosen values bound the cache."""
    tail = (f"arn={_printable(arn) if arn else '-'} access_key_id={_printable(access_key_id) if access_key_id else '-'}"
            f"{' error=' + error if error else ''}\n")
    if len(_TAILS) >= MAX_TAILS:
        _TAILS.clear()
    _TAILS[(arn, access_key_id, error)] = tail
    return tail


class RequestLog:
    """The one-line-per-request log (logger name `tastemaker.requests`), buffered and written straight to a file
    descriptor in whole lines (see the module docstring)."""

    __slots__ = ("_due", "_flusher", "_lock", "_pending", "_size", "enabled", "fd", "json")

    def __init__(self) -> None:
        self.enabled = False
        self.json = False
        self.fd = 2
        self._pending: list[bytes] = []
        self._size = 0
        self._due = 0.0  # when the oldest buffered line must be written (time.time())
        self._lock = threading.Lock()
        self._flusher = -1  # the pid whose daemon flusher runs (a forked child starts its own)

    def write(self, now: float, request_id: str, operation: str, arn: str | None, access_key_id: str | None,
              status: int, latency_ms: float, error: str | None = None) -> None:
        if not self.enabled:
            return
        if self.json:
            line = orjson.dumps({"time": _stamp(now), "level": "INFO", "logger": "tastemaker.requests",
                                 "request_id": request_id, "operation": operation, "arn": arn,
                                 "access_key_id": access_key_id, "status": status,
                                 "latency_ms": round(latency_ms, 3), "error": error}) + b"\n"
        else:
            tail = _TAILS.get((arn, access_key_id, error))
            if tail is None:
                tail = _tail(arn, access_key_id, error)
            line = (f"{_stamp(now)} INFO tastemaker.requests: {operation} {status} {latency_ms:.2f}ms "
                    f"request_id={request_id} {tail}").encode()
        with self._lock:
            if not self._pending:
                self._due = now + FLUSH_SECONDS
                if self._flusher != os.getpid():
                    self._start_flusher()
            self._pending.append(line)
            self._size += len(line)
            if self._size >= FLUSH_BYTES or now >= self._due:
                self._write_pending()

    def flush(self) -> None:
        """Write what is buffered now."""
        with self._lock:
            self._write_pending()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        data = memoryview(b"".join(self._pending))
        self._pending.clear()
        self._size = 0
        try:
            while data:  # a pipe may take part of a large write
                data = data[os.write(self.fd, data):]
        except OSError:  # stderr closed or full: a request never fails because its log line could not be written
            pass

    def _start_flusher(self) -> None:
        self._flusher = os.getpid()

        def loop() -> None:
            while True:
                time.sleep(FLUSH_SECONDS)
                if self._pending and time.time() >= self._due:
                    self.flush()

        threading.Thread(target=loop, name="request-log-flush", daemon=True).start()


REQUESTS = RequestLog()
atexit.register(REQUESTS.flush)


def configure(level: str = "info", fmt: str = "text") -> None:
    """Send every `tastemaker` logger to stderr at `level`, formatted as `fmt` (text or json)."""
    if level.lower() not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}; got {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    numeric = getattr(logging, level.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter(fmt))
    root = logging.getLogger("tastemaker")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    root.propagate = False
    REQUESTS.flush()
    REQUESTS.enabled = numeric <= logging.INFO
    REQUESTS.json = fmt == "json"
    REQUESTS.fd = sys.stderr.fileno()


def job_changed(job_id: int, kind: str, arn: str, old: str | None, new: str | None, seconds: float,
                reason: str | None) -> None:
    """The job state-change line: which job, which resource, old -> new status, how long, and why it failed."""
    logging.getLogger("tastemaker.jobs").log(
        logging.WARNING if reason else logging.INFO, "job %s %s: %s -> %s", job_id, kind, old, new,
        extra={"fields": {"job_id": job_id, "job_kind": kind, "arn": arn, "old_status": old, "new_status": new,
                          "duration_s": round(seconds, 3), "failure_reason": reason}})
