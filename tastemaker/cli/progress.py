"""A small progress printer on stderr (bar or spinner with elapsed time) and polling of asynchronous resources."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from tastemaker.store.status import Status

DONE = {Status.ACTIVE, Status.CREATE_FAILED, Status.CREATE_STOPPED, Status.INACTIVE}
SPINNER = "|/-\\"


class Progress:
    """One line redrawn in place when stderr is a terminal; otherwise a line every `quiet_every` seconds."""

    def __init__(self, label: str, *, total: int | None = None, stream: TextIO | None = None,
                 width: int = 28, quiet_every: float = 10.0) -> None:
        self.label, self.total, self.width = label, total, width
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.done = 0
        self.status = ""
        self._tick = 0
        self._last_quiet = 0.0
        self.quiet_every = quiet_every
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def render(self) -> str:
        elapsed = f"{self.elapsed:5.1f}s"
        if self.total:
            filled = int(self.width * min(self.done, self.total) / self.total)
            bar = "#" * filled + "." * (self.width - filled)
            return f"  {self.label} [{bar}] {self.done}/{self.total} {elapsed} {self.status}".rstrip()
        self._tick += 1
        return f"  {self.label} {SPINNER[self._tick % len(SPINNER)]} {elapsed} {self.status}".rstrip()

    def update(self, done: int | None = None, status: str | None = None) -> None:
        if done is not None:
            self.done = done
        if status is not None:
            self.status = status
        if self.tty:
            self.stream.write("\r\033[K" + self.render())
            self.stream.flush()
        elif self.elapsed - self._last_quiet >= self.quiet_every:
            self._last_quiet = self.elapsed
            self.stream.write(self.render() + "\n")
            self.stream.flush()

    def finish(self, status: str = "done") -> float:
        self.status = status
        if self.total:
            self.done = self.total
        line = self.render()
        self.stream.write(("\r\033[K" if self.tty else "") + line + "\n")
        self.stream.flush()
        return self.elapsed


def wait_all(label: str, describes: list[Callable[[], dict[str, Any]]], key: str, *,
             timeout: float = 1800.0, poll: float = 0.5, stream: TextIO | None = None) -> list[dict[str, Any]]:
    """Poll each Describe call until its resource under `key` is terminal; show a bar of how many are done."""
    progress = Progress(label, total=len(describes), stream=stream)
    results: list[dict[str, Any] | None] = [None] * len(describes)
    deadline = time.monotonic() + timeout
    while True:
        pending: set[str] = set()
        for index, describe in enumerate(describes):
            if results[index] is None:
                body = describe()[key]
                if body.get("status") in DONE:
                    results[index] = body
                else:
                    pending.add(str(body.get("status")))
        finished = sum(r is not None for r in results)
        progress.update(finished, ", ".join(sorted(pending)).lower())
        if finished == len(describes):
            break
        if time.monotonic() > deadline:
            progress.finish("timed out")
            raise TimeoutError(f"{label}: still {', '.join(sorted(pending))} after {timeout:.0f}s")
        time.sleep(poll)
    failed = [r for r in results if r and r.get("status") != Status.ACTIVE]
    progress.finish("failed" if failed else "ok")
    return [r for r in results if r is not None]


def wait_until_gone(label: str, describe: Callable[[], Any], *, timeout: float = 600.0, poll: float = 0.3,
                    stream: TextIO | None = None) -> float:
    """Poll a Describe call until it raises ResourceNotFoundException; return the seconds it took."""
    progress = Progress(label, stream=stream)
    deadline = time.monotonic() + timeout
    while True:
        try:
            body = describe()
        except Exception as exc:  # only "not found" means done
            if getattr(exc, "response", {}).get("Error", {}).get("Code") == "ResourceNotFoundException":
                return progress.finish("deleted")
            raise
        status = next((v.get("status") for v in body.values() if isinstance(v, dict) and "status" in v), "")
        progress.update(status=str(status).lower())
        if time.monotonic() > deadline:
            progress.finish("timed out")
            raise TimeoutError(f"{label}: still {status} after {timeout:.0f}s")
        time.sleep(poll)
