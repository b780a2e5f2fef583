"""Turn the failures a user can cause (a server's error answer, a wrong URL, a port in use, a failed job) into
one line on stderr and a non-zero exit; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import sys
from typing import TextIO


class CommandFailed(Exception):
    """A client-side command stopped for a reason the user can act on; the message says what and how."""


def describe(exc: BaseException) -> str | None:
    """The one line for a user-caused failure, or None for an unexpected one (a bug: show the traceback)."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
    from sqlalchemy import exc as sa_exc

    from tastemaker.errors import TastemakerError

    if isinstance(exc, CommandFailed | TastemakerError):
        code = getattr(exc, "code", None)
        return f"{code}: {exc}" if code else str(exc)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', exc)}"
    if isinstance(exc, EndpointConnectionError):
        return f"{exc} -- is the server running? (`make run`, or pass --endpoint / set TASTEMAKER_ENDPOINT)"
    if isinstance(exc, BotoCoreError):
        return str(exc)
    if isinstance(exc, sa_exc.ArgumentError | sa_exc.NoSuchModuleError):
        return (f"the database URL cannot be used: {exc}. Pass --db-url (or TASTEMAKER_DB_URL) as "
                "sqlite:////absolute/path.db or postgresql+psycopg://user:password@host/dbname")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
            return (f"the metadata database has no Tastemaker tables ({reason}): is --data-dir / --db-url the "
                    "server's? A new database gets them from `tastemaker db upgrade` or the first `serve`.")
        return f"cannot open the metadata database: {reason} (check --db-url / TASTEMAKER_DB_URL)"
    if isinstance(exc, PermissionError | FileNotFoundError | FileExistsError | NotADirectoryError
                  | IsADirectoryError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where} (check --data-dir and the paths given)"
    return None


def report(command: str, exc: BaseException, err: TextIO | None = None) -> int | None:
    """Print the one line and return the exit status, or None when `exc` should propagate."""
    if isinstance(exc, KeyboardInterrupt):
        print(f"tastemaker {command}: interrupted", file=err or sys.stderr)
        return 130
    line = describe(exc)
    if line is None:
        return None
    print(f"tastemaker {command}: {line}", file=err or sys.stderr)
    return 1
