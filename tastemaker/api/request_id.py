"""The request id of the API call being served: one per request, sent back as `x-amzn-RequestId`.

`api/app.py` makes a fresh id (a UUID4, the shape AWS uses) before anything else happens to a request and
puts it in a context variable, so that anything running for that request -- a request log, an audit record,
an error report, code in the thread pool (asyncio and Starlette's thread pool copy the context) -- can read it
with `current()` without it being passed through every call. Every answer, errors included, carries it.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

HEADER = b"x-amzn-requestid"

_current: ContextVar[str | None] = ContextVar("tastemaker_request_id", default=None)


def new() -> str:
    """A fresh id for a request, made current for the code that serves it."""
    rid = str(uuid.uuid4())
    _current.set(rid)
    return rid


def current() -> str | None:
    """The id of the request being served, or None outside a request (jobs, startup)."""
    return _current.get()
