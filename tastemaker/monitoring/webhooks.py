"""Notifications of resource state changes: signed webhooks, an EventBridge bus or an SNS topic, from a durable
outbox with retries.

When a job ends (tastemaker.monitoring.jobs), the resource's state change becomes one event in EventBridge's
shape (`detail-type` "Solution Version State Change", `detail` with the ARN, previous and new status, failure
reason, and a solution version's metrics), written to the outbox once per webhook that wants it (the dataset
group's and the global ones). Delivery is tried at once and then by the job runner's maintenance loop:
a failed attempt is retried after 1, 2, 4 ... seconds (at most 5 minutes apart) for `MAX_ATTEMPTS` attempts, so
a receiver that is down for a while misses nothing. Rows are claimed with a lease (store.webhooks.due), so a
delivering process that dies leaves them to the next one: delivery is at least once, and receivers de-duplicate
by the event `id` (also in the `X-Tastemaker-Event-Id` header).

A URL gets a JSON POST signed like `X-Tastemaker-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>`
with the webhook's secret. An EventBridge bus ARN gets PutEvents (Source `tastemaker.personalize`), an SNS topic
ARN gets Publish; both through boto3, whose endpoint the standard AWS_ENDPOINT_URL_* variables can redirect.
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
from datetime import UTC, datetime
from typing import Any

import orjson

from tastemaker.errors import InvalidInputException
from tastemaker.services import Services
from tastemaker.store import queue, resources
from tastemaker.store import webhooks as store

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
    with services.engine.begin() as conn:
        store.add(conn, hook)
    return hook


def _label(kind: str) -> str:
    return " ".join(word.capitalize() for word in kind.split("_"))


def state_change(services: Services, job: queue.Job, before: resources.Resource | None,
                 after: resources.Resource | None) -> dict[str, Any] | None:
    """The event for a job's state change, or None when nothing changed that a subscriber would see."""
    resource = after or before
    if resource is None:
        return None
    old = before.status if before else None
    new = after.status if after else "DELETED"
    detail: dict[str, Any] = {"resourceArn": resource.arn, "resourceType": resource.kind, "previousStatus": old,
                              "status": new, "datasetGroupArn": resource.dataset_group_arn, "jobKind": job.kind}
    updates = {k: v for k, v in (after.body.items() if after else ()) if k.startswith("latest_")
               and k.endswith("_update") and isinstance(v, dict)}
    if old == new and not updates:
        return None
    if after is not None and new and new.endswith("FAILED"):
        detail["failureReason"] = after.body.get("failure_reason")
    if after is not None and resource.kind == "solution_version" and new == "ACTIVE":
        detail["metrics"] = after.body.get("metrics", {})
    for key, record in updates.items():
        detail[_camel(key)] = {"status": record.get("status"), "failureReason": record.get("failure_reason")}
    region = resource.arn.split(":")[3] if resource.arn.count(":") >= 5 else services.settings.default_region
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": f"{_label(resource.kind)} State Change",
            "source": SOURCE, "account": services.settings.account_id,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
            "resources": [resource.arn], "detail": detail}


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


def publish(services: Services, event: dict[str, Any], dataset_group_arn: str | None) -> int:
    """Write the event to the outbox for each subscriber; returns how many."""
    with services.engine.begin() as conn:
        hooks = store.subscribers(conn, dataset_group_arn)
        store.enqueue(conn, event["id"], [h.id for h in hooks], event, time.time())
    return len(hooks)


def notify_job(services: Services, job: queue.Job, before: resources.Resource | None,
               after: resources.Resource | None) -> None:
    """A finished job's state change to its subscribers, delivered at once where they answer."""
    event = state_change(services, job, before, after)
    if event is not None and publish(services, event, event["detail"]["datasetGroupArn"]):
        deliver_due(services)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def send(hook: store.Webhook, event: dict[str, Any]) -> None:
    """One delivery attempt; raises on any failure (a non-2xx answer included)."""
    kind = target_kind(hook.target)
    body = orjson.dumps(event)
    if kind == "url":
        stamp = int(time.time())
        request = urllib.request.Request(hook.target, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "Tastemaker-Webhooks/1",
            "X-Tastemaker-Event-Id": event["id"], "X-Tastemaker-Signature": signature(hook.secret or "", stamp, body)})
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
    """Deliver what is due in the outbox; returns how many were delivered."""
    done = 0
    while True:
        with services.engine.begin() as conn:
            batch = store.due(conn, time.time(), LEASE_SECONDS)
        if not batch:
            return done
        for item in batch:
            try:
                send(item.webhook, item.event)
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
