"""Console sign-in: an access key id and secret checked against the server's key store, and sessions.

A session is a random token in an HttpOnly, SameSite=Strict cookie; the server keeps the session (key id,
region, CSRF token, a digest of the secret) in memory, so signing out or a restart ends it, and a key that is
disabled, deleted or rotated ends its sessions at the next page (the digest no longer matches). Every form
that changes something carries the session's CSRF token, compared in constant time. The secret itself is
never stored, logged or put in a URL.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from tastemaker.api.keys import KeyStore

COOKIE = "tastemaker_console"
IDLE_SECONDS = 8 * 3600
MAX_FAILURES = 10  # wrong secrets per key id ...
FAILURE_WINDOW = 300  # ... within this many seconds lock the key id's sign-in until the window ends


class TooManyAttempts(Exception):
    pass


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass
class Session:
    access_key_id: str
    region: str
    secret_digest: bytes
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    last_seen: float = field(default_factory=time.monotonic)


class Sessions:
    """The signed-in sessions of this process."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, tuple[int, float]] = {}  # key id -> (wrong secrets, since when)
        self._lock = threading.Lock()

    def sign_in(self, access_key_id: str, secret: str, region: str) -> str | None:
        """A new session token when the key id and secret match a key the API accepts, else None.

        Raises TooManyAttempts after MAX_FAILURES wrong secrets for one key id within FAILURE_WINDOW seconds
        (the right secret too, until the window has passed): guessing a secret through the form is slow."""
        akid = access_key_id.strip()
        with self._lock:
            count, since = self._failures.get(akid, (0, time.monotonic()))
            if time.monotonic() - since > FAILURE_WINDOW:
                count, since = 0, time.monotonic()
            if count >= MAX_FAILURES:
                raise TooManyAttempts(f"Too many wrong secrets for {akid}: try again in {FAILURE_WINDOW // 60} "
                                      "minutes.")
        known = self.keys.secret_for(akid)
        if known is None or not hmac.compare_digest(known.encode(), secret.encode()):
            with self._lock:
                self._failures[akid] = (count + 1, since)
            return None
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._failures.pop(akid, None)
            self._sessions[token] = Session(akid, region, _digest(secret))
        return token

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            known = self.keys.secret_for(session.access_key_id)
            stale = time.monotonic() - session.last_seen > IDLE_SECONDS
            if stale or known is None or not hmac.compare_digest(_digest(known), session.secret_digest):
                del self._sessions[token]
                return None
            session.last_seen = time.monotonic()
            return session

    def sign_out(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())
