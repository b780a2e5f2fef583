"""Requests on the event loop: a request runs inline only while everything it needs is already in memory.

The API layer runs warm runtime requests and PutEvents directly on the event loop (no thread-pool hop, no GIL hand-offs
between request threads: most of the latency under load). Anything that would block the loop (a database
read on a cache miss, loading a model, building a catalogue, index or compiled filter) calls `slow_step()`
first; inside `inline()` that raises NotWarm before any work is done, and the API layer reruns the whole
request in the thread pool, where the slow step runs as usual and warms the caches for the next request.
Runtime requests are read-only, and PutEvents takes its slow steps before it writes, so starting over is safe;
PutEvents then awaits its group commit (an awaitable answer) instead of blocking the loop. This module sits in
the real-time layer, the lowest one that uses it, so that serving and the events API share it.
"""

from __future__ import annotations

import threading
from types import TracebackType

_state = threading.local()


class NotWarm(Exception):
    """Raised by slow_step() inside inline(): this request must run in the thread pool."""


class inline:  # lower case: used like the function it replaced, `with inline():`
    """Run the block inline: slow_step() raises NotWarm inside it (a plain object, not a generator-based
    context manager: it is entered on every runtime request)."""

    __slots__ = ("previous",)

    def __enter__(self) -> None:
        self.previous = getattr(_state, "inline", False)
        _state.inline = True

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        _state.inline = self.previous


def slow_step(what: str) -> None:
    """Call before work that may block (I/O, big builds): refused while running inline on the event loop."""
    if getattr(_state, "inline", False):
        raise NotWarm(what)


def is_inline() -> bool:
    """True while a request runs on the event loop (no other request runs concurrently in this process)."""
    return bool(getattr(_state, "inline", False))
