"""Console sign-in: an access key id and secret checked against the server's key store, and sessions that
every worker process (and every replica sharing the data dir) accepts.

A session is stateless: the cookie holds `payload.signature`, where the payload names the access key id, the
region, a random session id, when it was issued and a keyed digest of the key's secret, and the signature is
HMAC-SHA256 under a 32-byte signing key kept in `DATA_DIR/console/session-key` (created once, 0600, by
whichever process needs it first; the others read it). So a request may land on any `--workers` process.

A session ends when it is 8 hours old, when it is signed out (its id is written to
`DATA_DIR/console/signed-out/`, which every process checks), or when its key is disabled, deleted or rotated
(the secret digest no longer matches the key store at the next page). Every form that changes something
carries the session's CSRF token, an HMAC of the session id, compared in constant time. The secret itself is
never stored, logged or put in a URL; the cookie carries only a keyed digest of it. Wrong-secret lockout is
counted per process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tastemaker.api.keys import KeyStore

COOKIE = "tastemaker_console"
LIFETIME_SECONDS = 8 * 3600
MAX_FAILURES = 10  # wrong secrets per key id ...
FAILURE_WINDOW = 300  # ... within this many seconds lock the key id's sign-in until the window ends


class TooManyAttempts(Exception):
    pass


@dataclass(frozen=True)
class Session:
    access_key_id: str
    region: str
    session_id: str
    issued_at: float
    csrf: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_key(directory: Path) -> bytes:
    """The console's signing key in `directory` (made once, atomically: concurrent workers agree on one)."""
    path = directory / "session-key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        pass
    directory.mkdir(parents=True, exist_ok=True)
    temp = directory / f".session-key.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32))
    try:
        os.link(temp, path)  # fails if another process linked its key first: then that one is the key
    except FileExistsError:
        pass
    finally:
        temp.unlink()
    return bytes.fromhex(path.read_text().strip())


class Sessions:
    """Issues and checks session cookies for the keys of one key store."""

    def __init__(self, keys: KeyStore, data_dir: Path) -> None:
        self.keys = keys
        self.directory = data_dir / "console"
        self.signed_out = self.directory / "signed-out"
        self._key = signing_key(self.directory)
        self._failures: dict[str, tuple[int, float]] = {}  # key id -> (wrong secrets, since when)
        self._lock = threading.Lock()

    def _mac(self, purpose: str, text: str) -> bytes:
        return hmac.new(self._key, f"{purpose}:{text}".encode(), hashlib.sha256).digest()

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
        with self._lock:
            self._failures.pop(akid, None)
        payload = json.dumps({"k": akid, "r": region, "s": _b64(secrets.token_bytes(18)), "t": int(time.time()),
                              "d": _b64(self._mac("secret", secret)[:16])}, separators=(",", ":")).encode()
        body = _b64(payload)
        return body + "." + _b64(self._mac("session", body))

    def get(self, token: str | None) -> Session | None:
        """The session a cookie stands for, or None (forged, expired, signed out, or its key changed)."""
        if not token or token.count(".") != 1:
            return None
        body, signature = token.split(".")
        try:
            if not hmac.compare_digest(_unb64(signature), self._mac("session", body)):
                return None
            data = json.loads(_unb64(body))
            akid, region, sid, issued, digest = data["k"], data["r"], data["s"], data["t"], data["d"]
        except (ValueError, KeyError, TypeError):
            return None
        if not 0 <= time.time() - issued <= LIFETIME_SECONDS or (self.signed_out / sid).exists():
            return None
        known = self.keys.secret_for(akid)
        if known is None or not hmac.compare_digest(_b64(self._mac("secret", known)[:16]), digest):
            return None
        return Session(akid, region, sid, float(issued), _b64(self._mac("csrf", sid)))

    def sign_out(self, session: Session) -> None:
        """End the session in every process; forget signed-out ids older than any live session."""
        self.signed_out.mkdir(parents=True, exist_ok=True)
        (self.signed_out / session.session_id).touch()
        cutoff = time.time() - LIFETIME_SECONDS - 60
        for old in self.signed_out.iterdir():
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except FileNotFoundError:
                pass  # another process forgot it first


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())
