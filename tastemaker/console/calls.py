"""The console's only way to act: the API's registered operations, called for the signed-in key.

`Caller.call("CreateDatasetGroup", {...})` runs exactly what a SigV4 request runs after its signature is
checked: the key's policy (`KeyStore.authorize`), validation against botocore's input shape, camelCase to
snake_case, the registered function with a RequestContext (inline or in the thread pool, `Api.run`), and the
answer back in wire form. Errors are the same `TastemakerError`s the API would send as JSON.
Each call is also answered to the API's monitor like a request (the log line, the metrics and, for a
control-plane call, the audit record with the browser's address and user agent `tastemaker-console`), except
successful reads (Describe/List/Get), which every page makes many of and the audit would drown in.
The CloudWatch and CloudTrail read operations (GetMetricData, LookupEvents) are callable too, under the
key's policy like the rest.
`BotoShaped` dresses a Caller as a boto3 client for code written against boto3 (the cleanup planner).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from botocore import xform_name
from starlette.concurrency import run_in_threadpool

from tastemaker.api import service_models
from tastemaker.api.app import Api, wire_payload
from tastemaker.api.convert import to_python
from tastemaker.api.request_id import new_request_id
from tastemaker.api.service_models import OperationInfo
from tastemaker.api.sigv4 import Credential
from tastemaker.api.validation import validate_input
from tastemaker.control.context import RequestContext
from tastemaker.errors import NotImplementedOperation, TastemakerError

SERVICES = (*service_models.SERVICE_NAMES, *service_models.EXTRA_OPERATIONS)
READS = ("Describe", "List", "Get")
USER_AGENT = "tastemaker-console"


def _operation(name: str) -> OperationInfo:
    for service in SERVICES:
        info = service_models.operation_by_name(service, name)
        if info is not None:
            return info
    raise KeyError(name)


class Caller:
    """Operations on behalf of one access key, in one region."""

    def __init__(self, api: Api, access_key_id: str, region: str, source_ip: str | None = None) -> None:
        self.api = api
        self.source_ip = source_ip
        self.credential = Credential(access_key_id, region, "personalize",
                                     datetime.now(UTC).strftime("%Y%m%d"), datetime.now(UTC))
        self.region = region

    def _prepare(self, name: str, raw: dict[str, Any] | None) -> tuple[OperationInfo, Callable[..., Any],
                                                                        dict[str, Any]]:
        info = _operation(name)
        fn = self.api.operations.get(name)
        if fn is None:
            raise NotImplementedOperation(f"Tastemaker does not implement {name} yet.")
        raw = {k: v for k, v in (raw or {}).items() if v not in (None, "", [], {})}
        self.api.keys.authorize(self.credential, info, raw)
        return info, fn, to_python(info.input_shape, validate_input(info.model, raw))

    @staticmethod
    def _answer(info: OperationInfo, result: Any) -> dict[str, Any]:
        return wire_payload(info, result)

    async def call(self, name: str, raw: dict[str, Any] | None = None) -> dict[str, Any]:
        started, info, params = time.perf_counter(), None, None
        try:
            info, fn, params = self._prepare(name, raw)
            answer = self._answer(info, await self.api.run(name, fn, RequestContext(self.api.services, self.region),
                                                           params))
        except TastemakerError as exc:
            audit = self._answered(started, name, info, raw, params, None, exc)
            if audit is not None:
                await run_in_threadpool(audit)
            raise
        audit = self._answered(started, name, info, raw, params, answer, None)
        if audit is not None:
            await run_in_threadpool(audit)
        return answer

    def call_sync(self, name: str, raw: dict[str, Any] | None = None) -> dict[str, Any]:
        """The same call from a worker thread (no event loop): the operation runs in this thread."""
        started, info, params = time.perf_counter(), None, None
        try:
            info, fn, params = self._prepare(name, raw)
            answer = self._answer(info, fn(RequestContext(self.api.services, self.region), **params))
        except TastemakerError as exc:
            audit = self._answered(started, name, info, raw, params, None, exc)
            if audit is not None:
                audit()
            raise
        audit = self._answered(started, name, info, raw, params, answer, None)
        if audit is not None:
            audit()
        return answer

    def _answered(self, started: float, name: str, info: OperationInfo | None, raw: dict[str, Any] | None,
                  params: dict[str, Any] | None, answer: dict[str, Any] | None,
                  error: TastemakerError | None) -> Callable[[], None] | None:
        """Tell the API's monitor about a change or a refusal (not a successful read): the audit write back."""
        if error is None and name.startswith(READS) and (info is None or info.service != "personalize-runtime"):
            return None
        return self.api.monitor.answered(
            started=started, request_id=new_request_id(), operation=name, service=info.service if info else None,
            input_shape=info.input_shape if info else None, access_key_id=self.credential.access_key_id,
            username=self.api.keys.name_of(self.credential.access_key_id), region=self.region, raw=raw,
            params=params, payload=answer, status=error.status if error else 200,
            error_code=error.code if error else None, error_message=error.message if error else None,
            source_ip=self.source_ip, user_agent=USER_AGENT)

    def allowed(self, name: str, raw: dict[str, Any]) -> bool:
        """Whether the key's policy lets it call `name` with these parameters (nothing is run)."""
        try:
            self.api.keys.authorize(self.credential, _operation(name), raw)
        except Exception:  # noqa: BLE001 - any refusal means "no"
            return False
        return True


class _Paginator:
    def __init__(self, caller: Caller, name: str) -> None:
        self.caller, self.name = caller, name

    def paginate(self, **params: Any) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self.caller.call_sync(self.name, {**params, "nextToken": token})
            yield page
            token = page.get("nextToken")
            if not token:
                return


class BotoShaped:
    """A boto3-shaped `personalize` client over a Caller (snake_case methods, paginators)."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.personalize = self
        self._names = {xform_name(info.name): info.name for info in service_models.all_operations()
                       if info.service == "personalize"}

    def can_paginate(self, method: str) -> bool:
        return method.startswith("list_")

    def get_paginator(self, method: str) -> _Paginator:
        return _Paginator(self.caller, self._names[method])

    def __getattr__(self, method: str) -> Callable[..., dict[str, Any]]:
        name = self.__dict__.get("_names", {}).get(method)
        if name is None:
            raise AttributeError(method)
        return lambda **params: self.caller.call_sync(name, params)
