"""Access keys: the root key, and scoped keys kept in the metadata database with their secrets encrypted at rest.

The root key comes from the environment or DATA_DIR/credentials.json (generated on first start) and may do
everything. Further keys (`tastemaker keys ...`) live in the `access_keys` table so that every API process sees
them: each has an IAM-style policy (api.policy) and a secret encrypted with AES-GCM under a key-encryption key
(TASTEMAKER_KEY_ENCRYPTION_KEY, else DATA_DIR/access-keys.kek, mode 0600), bound to its access key id. SigV4 needs
the plain secret to verify a signature, so each API process decrypts the keys into an in-memory snapshot that a
background thread re-reads every second: a request costs a dict lookup for its secret and, for a scoped key, a
cached per-action decision. After a rotation the previous secret is accepted until its overlap window ends.
The thread re-reads when a store wake-up says keys or event trackers changed (store/wakeups.py), at most once
a second, and every IDLE_REFRESH_SECONDS as a safety net; without live wake-ups, every second as before.
"""

from __future__ import annotations

import logging
import secrets
import string
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag

from tastemaker.api.policy import Policy, ResourcePlan, request_resources, resource_plan
from tastemaker.api.service_models import OperationInfo
from tastemaker.api.sigv4 import UNKNOWN_KEY_MESSAGE, Credential, HeaderLists, verify_sigv4
from tastemaker.config import Settings
from tastemaker.errors import (
    AccessDeniedException,
    AuthError,
    InvalidInputException,
    InvalidSignatureException,
    UnrecognizedClientException,
)
from tastemaker.store.secret_box import SecretBox
from tastemaker.store.secret_box import write_private as _write_private
from tastemaker.store.wakeups import Wakeups, wakeups

log = logging.getLogger("tastemaker.api.keys")
KEY_FILE = "credentials.json"
REFRESH_SECONDS = 1.0
IDLE_REFRESH_SECONDS = 60.0


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str


def _new_key() -> AccessKey:
    alphabet = string.ascii_uppercase + string.digits
    akid = "TMK" + "".join(secrets.choice(alphabet) for _ in range(17))
    secret = secrets.token_urlsafe(30)[:40]
    return AccessKey(akid, secret)


# IAM action prefixes of the services beside Personalize's three (their read APIs for metrics and the audit trail).
IAM_PREFIXES = {"cloudwatch": "cloudwatch", "cloudtrail": "cloudtrail"}


class KeyStore:
    """The keys this process accepts. `created` tells whether this start generated the root key (print it once).

    Built from the root key(s) alone; `attach` adds the database's keys and keeps them fresh.
    """

    def __init__(self, keys: list[AccessKey], created: bool = False) -> None:
        self.root = keys[0]
        self.created = created
        self._roots = {k.access_key_id: _Entry(k.access_key_id, "root", k.secret_access_key) for k in keys}
        self._entries: dict[str, _Entry] = dict(self._roots)
        self._trackers: dict[str, str] = {}
        self._trackers_read_at = 0.0
        self._plans: dict[str, ResourcePlan] = {}
        self._unreadable: set[tuple[str, int]] = set()
        self._engine: sa.Engine | None = None
        self._box: SecretBox | None = None
        self._settings: Settings | None = None
        self._account = "000000000000"
        self._stop = threading.Event()
        self._changed = threading.Event()  # a store wake-up: keys or trackers changed

    @classmethod
    def load(cls, settings: Settings) -> KeyStore:
        if settings.access_key_id and settings.secret_access_key:
            return cls([AccessKey(settings.access_key_id, settings.secret_access_key)])
        path = settings.data_dir / KEY_FILE
        if path.exists():
            data = orjson.loads(path.read_bytes())
            return cls([AccessKey(k["access_key_id"], k["secret_access_key"]) for k in data["keys"]])
        key = _new_key()
        _write_private(path, orjson.dumps({"keys": [key.__dict__]}, option=orjson.OPT_INDENT_2))
        return cls([key], created=True)

    # --- the database's keys --------------------------------------------------------------------------------

    def attach(self, engine: sa.Engine, settings: Settings, *, refresh_seconds: float = REFRESH_SECONDS) -> None:
        """Serve the database's keys too: read them now, then every `refresh_seconds` in a daemon thread."""
        self._engine = engine
        self._settings = settings
        self._account = settings.account_id
        store = wakeups(engine)
        for channel in ("keys", "changes"):  # scoped keys resolve trackingIds through the trackers
            store.subscribe(channel, self._changed.set)
        self.refresh()
        threading.Thread(target=self._refresh_loop, args=(refresh_seconds, store), name="access-key-refresh",
                         daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._changed.set()

    def _refresh_loop(self, every: float, store: Wakeups) -> None:
        while not self._stop.wait(every):
            if store.live:
                self._changed.wait(IDLE_REFRESH_SECONDS)
            self._changed.clear()  # before the read: a change committed during it is read again
            try:
                self.refresh()
            except Exception:  # keep serving the last snapshot; the log says why
                log.warning("could not re-read the access keys; serving the last ones read", exc_info=True)

    def refresh(self) -> None:
        """Re-read the keys (and event trackers' tracking ids) and swap in the new snapshot."""
        from tastemaker.control.event_trackers import trackers_by_tracking_id
        from tastemaker.store import access_keys

        assert self._engine is not None
        with self._engine.connect() as conn:
            rows = access_keys.list_all(conn)
            scoped = any(not r.is_root for r in rows)  # only scoped keys need trackingId -> tracker ARN
            trackers = {tid: t.arn for tid, t in trackers_by_tracking_id(conn).items()} if scoped else {}
        root_enabled = all(r.enabled for r in rows if r.is_root)
        entries = dict(self._roots) if root_enabled else {}
        for row in rows:
            if row.is_root or not row.enabled or not row.secret_ciphertext:
                continue
            known = self._entries.get(row.access_key_id)
            if known is not None and known.version == row.version:
                entries[row.access_key_id] = known
                continue
            entry = self._entry(row)
            if entry is not None:
                entries[row.access_key_id] = entry
        self._entries = entries
        self._trackers, self._trackers_read_at = trackers, time.monotonic()

    def _entry(self, row: Any) -> _Entry | None:
        try:
            if self._box is None and self._settings is not None:  # the CLI writes the file with the first key
                self._box = SecretBox.open(self._settings, create=False)
            if self._box is None:
                raise InvalidTag()
            secret = self._box.decrypt(row.secret_ciphertext, row.access_key_id)
            previous = (self._box.decrypt(row.previous_secret_ciphertext, row.access_key_id)
                        if row.previous_secret_ciphertext else None)
            policy = Policy.parse(row.policy)
        except (InvalidTag, ValueError, InvalidInputException) as exc:
            if (row.access_key_id, row.version) not in self._unreadable:
                self._unreadable.add((row.access_key_id, row.version))
                why = (exc.message if isinstance(exc, InvalidInputException) else
                       "its secret does not decrypt with this process's key-encryption key; give every process "
                       "the same TASTEMAKER_KEY_ENCRYPTION_KEY")
                log.error("access key %s (%s) is refused: %s", row.access_key_id, row.name, why)
            return None
        return _Entry(row.access_key_id, row.name, secret, previous, row.previous_expires_at, policy, row.version)

    # --- the request path ------------------------------------------------------------------------------------

    def name_of(self, access_key_id: str) -> str | None:
        """The key's name (the audit trail's user name), or None for a key this process does not accept."""
        entry = self._entries.get(access_key_id)
        return entry.name if entry is not None else None

    def secret_for(self, access_key_id: str) -> str | None:
        entry = self._entries.get(access_key_id)
        return entry.secret if entry is not None else None

    def _previous_secret_for(self, access_key_id: str) -> str | None:
        entry = self._entries.get(access_key_id)
        if entry is None or entry.previous_secret is None or (entry.previous_expires_at or 0) <= time.time():
            return None
        return entry.previous_secret

    def verify(self, method: str, path: str, query_string: str, headers: Mapping[str, str] | HeaderLists,
               body: bytes, *, max_skew: timedelta) -> Credential:
        """SigV4 with the key's secret, or with its previous secret while a rotation's overlap window lasts."""
        try:
            return verify_sigv4(method, path, query_string, headers, body, self.secret_for, max_skew=max_skew)
        except InvalidSignatureException as first:
            try:
                return verify_sigv4(method, path, query_string, headers, body, self._previous_secret_for,
                                    max_skew=max_skew)
            except AuthError:
                raise first from None

    def authorize(self, credential: Credential, info: OperationInfo, params: Any) -> None:
        """Raise AccessDeniedException (IAM's message) unless the key's policy allows this call."""
        entry = self._entries.get(credential.access_key_id)
        if entry is None:  # disabled or deleted by a refresh between verify and now: fail closed
            raise UnrecognizedClientException(UNKNOWN_KEY_MESSAGE)
        if entry.policy is None:  # the root key
            return
        action = IAM_PREFIXES.get(info.service, "personalize") + ":" + info.name
        refusal = entry.policy.check(action, lambda: self._resources(info, params, credential.region))
        if refusal is None:
            return
        why = ("with an explicit deny in an identity-based policy" if refusal.explicit
               else f"because no identity-based policy allows the {action} action")
        raise AccessDeniedException(f"User: arn:aws:iam::{self._account}:user/{entry.name} is not authorized to "
                                    f"perform: {action} on resource: {refusal.resource} {why}")

    def _resources(self, info: OperationInfo, params: Any, region: str) -> list[str]:
        plan = self._plans.get(info.name)
        if plan is None:
            plan = self._plans.setdefault(info.name, resource_plan(info.name, info.input_shape))
        return request_resources(plan, params if isinstance(params, dict) else {}, region, self._account,
                                 self._tracker_arn)

    def _tracker_arn(self, tracking_id: str) -> str | None:
        arn = self._trackers.get(tracking_id)
        if arn is None and self._engine is not None and time.monotonic() - self._trackers_read_at > 0.5:
            from tastemaker.control.event_trackers import trackers_by_tracking_id

            with self._engine.connect() as conn:  # a tracker created since the last refresh
                self._trackers = {tid: t.arn for tid, t in trackers_by_tracking_id(conn).items()}
            self._trackers_read_at = time.monotonic()
            arn = self._trackers.get(tracking_id)
        return arn


@dataclass(frozen=True)
class _Entry:
    """One accepted key in a process's snapshot (policy None: the root key, which may do everything)."""

    access_key_id: str
    name: str
    secret: str
    previous_secret: str | None = None
    previous_expires_at: float | None = None
    policy: Policy | None = None
    version: int = 0


def boto3_snippet(key: AccessKey, endpoint: str, region: str) -> str:
    return (
        "import boto3\n"
        f"session = boto3.Session(aws_access_key_id={key.access_key_id!r},\n"
        f"                        aws_secret_access_key={key.secret_access_key!r},\n"
        f"                        region_name={region!r})\n"
        f"personalize = session.client('personalize', endpoint_url={endpoint!r})\n"
        f"runtime = session.client('personalize-runtime', endpoint_url={endpoint!r})\n"
        f"events = session.client('personalize-events', endpoint_url={endpoint!r})\n"
    )
