"""What every console page handler shares: the signed-in request (`Ctx`) and small helpers.

`Ctx` holds the session, a `Caller` that runs operations for the session's key (console.calls) and whether
that key may change anything (the page then offers no change buttons); `render` fills in what every template
needs. Lists are read a page at a time (`list_all` stops at a limit), never the whole catalogue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tastemaker.console.calls import Caller
from tastemaker.console.sessions import Session

if TYPE_CHECKING:
    from tastemaker.console.app import Console

PREFIX = "/console"
PAGE = 20  # rows per list page
BUSY_WORDS = ("PENDING", "IN_PROGRESS", "IN PROGRESS")


class Ctx:
    """One signed-in request: its session, the operations caller and what the templates need."""

    def __init__(self, console: Console, request: Request, session: Session) -> None:
        self.console = console
        self.request = request
        self.session = session
        self.caller = Caller(console.api, session.access_key_id, session.region,
                             source_ip=request.client.host if request.client else None)
        self.can_write = self.caller.allowed("CreateDatasetGroup", {"name": "console-probe"})

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        values.update(request=self.request, session=self.session, can_write=self.can_write, prefix=PREFIX,
                      csrf=self.session.csrf, busy=busy,
                      plotly_js=self.console.plotly.name)
        return self.console.templates.TemplateResponse(self.request, template, values, status_code=status)


Handler = Callable[[Request, Ctx], Awaitable[Response]]


class FormTooLarge(Exception):
    pass


def busy(status: str | None) -> bool:
    return bool(status) and any(word in (status or "") for word in BUSY_WORDS)


def back(path: str, **query: str) -> RedirectResponse:
    return RedirectResponse(PREFIX + path + ("?" + urlencode(query) if query else ""), status_code=303)


def when(value: Any) -> str:
    """A wire timestamp (epoch seconds) as UTC date and time."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value or "")


def is_recommender(arn: str) -> bool:
    return ":recommender/" in arn


async def list_all(call: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]], name: str, field: str,
                   params: dict[str, Any], limit: int = 200) -> list[dict[str, Any]]:
    """Up to `limit` rows of a list operation, page by page."""
    rows: list[dict[str, Any]] = []
    token = None
    while len(rows) < limit:
        page = await call(name, {**params, "maxResults": min(100, limit - len(rows)), "nextToken": token})
        rows.extend(page.get(field, []))
        token = page.get("nextToken")
        if not token:
            break
    return rows


async def to_thread(fn: Callable[[], Any]) -> Any:
    return await run_in_threadpool(fn)
