"""Notifications of resource state changes: signed webhooks, an EventBridge bus or an SNS topic, from a durable
outbox with retries.

Every status change of a resource (made by a call or by a job) is recorded by the store in the transaction
that makes it (tastemaker.store.state_changes). The job runner's maintenance loop turns each into one event in
EventBridge's shape (`detail-type` "Solution Version State Change", `detail` with the ARN, previous and new
status, failure reason, a solution version's metrics, a changed latest*Update record), written to the outbox
once per webhook that wants it (the dataset group's and the global ones), and delivers it there, off the
request and job threads; a failed attempt is retried after 1, 2, 4 ... seconds (at most 5 minutes apart) for
`MAX_ATTEMPTS` attempts, so a receiver that is down for a while misses nothing. Rows are claimed with a lease (store.webhooks.due), so a
delivering process that dies leaves them to the next one: delivery is at least once, and receivers de-duplicate
by the event `id` (also in the `X-Tastemaker-Event-Id` header).

A URL gets a JSON POST signed like `X-Tastemaker-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>`
with the webhook's secret, which is stored encrypted (tastemaker.store.secret_box) and never logged. An
EventBridge bus ARN gets PutEvents (Source `tastemaker.personalize`), an SNS topic ARN gets Publish; both
through boto3, whose endpoint the standard AWS_ENDPOINT_URL_* variables can redirect.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson

from tastemaker.config import Settings
from tastemaker.errors import InvalidInputException
from tastemaker.services import Services
from tastemaker.store import resources, state_changes
from tastemaker.store import webhooks as store
from tastemaker.store.secret_box import CIPHER_VERSION, SecretBox

log = logging.getLogger("tastemaker.webhooks")
SOURCE = "tastemaker.personalize"
MAX_ATTEMPTS = 25
MAX_BACKOFF_SECONDS = 300.0
LEASE_SECONDS = 60.0
TIMEOUT_SECONDS = 10.0
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_BUS = re.compile(r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/[\w.\-/]+$")
_TOPIC = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w\-]+(\.fifo)?$")


def target_kind(target: str) -> str:
    """"url", "eventbridge" or "sns"; anything else is an InvalidInputException naming the accepted forms."""
    if _URL.match(target):
        return "url"
    if _BUS.match(target):
        return "eventbridge"
    if _TOPIC.match(target):
        return "sns"
    raise InvalidInputException(
        f"Webhook target {target!r} is not an http(s) URL, an EventBridge bus ARN "
        "(arn:aws:events:REGION:ACCOUNT:event-bus/NAME) or an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME).")


def add(services: Services, target: str, dataset_group_arn: str | None = None,
        secret: str | None = None) -> store.Webhook:
    """Register a webhook (a URL gets a generated secret unless one is given)."""
    kind = target_kind(target)
    if dataset_group_arn is not None:
        with services.read_engine.connect() as conn:
            resources.get(conn, dataset_group_arn, "dataset_group")
    if kind == "url" and not secret:
        secret = secrets.token_hex(32)
    hook = store.Webhook(f"wh-{uuid.uuid4().hex[:12]}", target, dataset_group_arn, secret, time.time())
    sealed = replace(hook, secret=_box(services.settings).encrypt(secret, hook.id)) if secret else hook
    with services.engine.begin() as conn:
        store.add(conn, sealed)
    return hook


def _box(settings: Settings) -> SecretBox:
    box = SecretBox.open(settings, create=True)
    assert box is not None  # create=True makes one
    return box


def unseal(settings: Settings, hook: store.Webhook) -> str:
    """A webhook's HMAC secret in the clear (it is stored encrypted, bound to the webhook id)."""
    if not hook.secret:
        return ""
    if not hook.secret.startswith(CIPHER_VERSION):  # written before secrets were encrypted: sealed on next pass
        return hook.secret
    try:
        return _box(settings).decrypt(hook.secret, hook.id)
    except Exception as exc:
        raise RuntimeError(
            f"the secret of webhook {hook.id} does not open with this process's key-encryption key: give every "
            "process the same TASTEMAKER_KEY_ENCRYPTION_KEY (or DATA_DIR/access-keys.kek)") from exc


def seal_plain_secrets(services: Services) -> int:
    """Encrypt the secrets of webhooks registered before secrets were encrypted; returns how many."""
    with services.engine.begin() as conn:
        plain = [h for h in store.all_hooks(conn) if h.secret and not h.secret.startswith(CIPHER_VERSION)]
        for hook in plain:
            store.set_secret(conn, hook.id, _box(services.settings).encrypt(hook.secret or "", hook.id))
    return len(plain)


def _label(kind: str) -> str:
    return " ".join(word.capitalize() for word in kind.split("_"))


def event_of(services: Services, change: state_changes.StateChange) -> dict[str, Any]:
    """A recorded state change in EventBridge's shape."""
    detail: dict[str, Any] = {"resourceArn": change.arn, "resourceType": change.kind,
                              "previousStatus": change.previous_status, "status": change.status,
                              "datasetGroupArn": change.dataset_group_arn, **change.detail}
    region = change.arn.split(":")[3] if change.arn.count(":") >= 5 else services.settings.default_region
    return {"version": "0", "id": change.event_id, "detail-type": f"{_label(change.kind)} State Change",
            "source": SOURCE, "account": services.settings.account_id,
            "time": datetime.fromtimestamp(change.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region, "resources": [change.arn], "detail": detail}


def fan_out(services: Services) -> int:
    """Move recorded state changes into the outbox, one row per subscriber; returns how many changes moved.

    Taking the changes and writing their outbox rows is one transaction: a process that dies in between
    leaves the changes for the next pass, and two processes never fan out the same change.
    """
    moved = 0
    while True:
        with services.engine.begin() as conn:
            changes = state_changes.take(conn)
            now = time.time()
            for change in changes:
                hooks = store.subscribers(conn, change.dataset_group_arn)
                if hooks:
                    store.enqueue(conn, change.event_id, [h.id for h in hooks], event_of(services, change), now)
        moved += len(changes)
        if not changes:
            return moved


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def send(settings: Settings, hook: store.Webhook, event: dict[str, Any]) -> None:
    """One delivery attempt; raises on any failure (a non-2xx answer included)."""
    kind = target_kind(hook.target)
    body = orjson.dumps(event)
    if kind == "url":
        secret = unseal(settings, hook)
        stamp = int(time.time())
        request = urllib.request.Request(hook.target, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "Tastemaker-Webhooks/1",
            "X-Tastemaker-Event-Id": event["id"], "X-Tastemaker-Signature": signature(secret, stamp, body)})
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            if not 200 <= response.status < 300:
                raise RuntimeError(f"HTTP {response.status}")
        return
    import boto3

    region = hook.target.split(":")[3]
    if kind == "eventbridge":
        answer = boto3.client("events", region_name=region).put_events(Entries=[{
            "Source": SOURCE, "DetailType": event["detail-type"], "Detail": orjson.dumps(event["detail"]).decode(),
            "Resources": event["resources"], "EventBusName": hook.target}])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the event: {answer['Entries']}")
    else:
        boto3.client("sns", region_name=region).publish(TopicArn=hook.target, Message=body.decode(),
                                                         Subject=event["detail-type"][:100])


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: 1, 2, 4, ... at most 5 minutes."""
    return float(min(MAX_BACKOFF_SECONDS, 2 ** max(0, attempts - 1)))


def deliver_due(services: Services) -> int:
    """Fan recorded state changes out to the outbox, then deliver what is due; returns how many were delivered.

    The job runner's maintenance loop calls this: no delivery runs on a job's or a request's thread.
    """
    seal_plain_secrets(services)
    fan_out(services)
    done = 0
    while True:
        with services.engine.begin() as conn:
            batch = store.due(conn, time.time(), LEASE_SECONDS)
        if not batch:
            return done
        for item in batch:
            try:
                send(services.settings, item.webhook, item.event)
            except Exception as exc:  # noqa: BLE001 - any failure is retried
                attempts = item.attempts + 1
                error = f"{type(exc).__name__}: {exc}"
                retry = None if attempts >= MAX_ATTEMPTS else time.time() + backoff(attempts)
                (log.error if retry is None else log.info)(
                    "webhook %s: delivery of event %s failed (attempt %d%s): %s", item.webhook.id, item.event_id,
                    attempts, ", giving up" if retry is None else "", error)
                with services.engine.begin() as conn:
                    store.failed(conn, item.seq, error, retry)
            else:
                done += 1
                log.info("webhook %s: delivered event %s", item.webhook.id, item.event_id)
                with services.engine.begin() as conn:
                    store.delivered(conn, item.seq, time.time())
