"""The request id of the call being served: made once per request, sent as `x-amzn-RequestId` and logged.

`current` holds it for the request's task (a ContextVar: each ASGI request runs in its own task, so ids never
leak between concurrent requests); code that logs on behalf of the request reads it from there.
"""

from __future__ import annotations

import os
from contextvars import ContextVar

current: ContextVar[str] = ContextVar("tastemaker_request_id", default="-")


def new_request_id() -> str:
    """A fresh id in AWS's shape (a UUID4 string), set as `current` for the calling context."""
    h = os.urandom(16).hex()  # a version-4 UUID, formatted by hand: uuid.uuid4() costs 5x as much
    rid = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"
    current.set(rid)
    return rid
