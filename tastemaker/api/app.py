"""The HTTP server: one port for the control plane (JSON 1.1), the runtime and the events APIs.

A plain ASGI application (no per-request framework objects: on the runtime path the framework's request and
response objects cost as much as the rest of the API layer). Each request is SigV4-verified, routed by
X-Amz-Target or method + path, validated against the botocore input shape and converted to snake_case.
Operations run in the thread pool, except the runtime reads (GetRecommendations, GetPersonalizedRanking) and
PutEvents, which run on the event loop while what they need is in memory (tastemaker.realtime.inline); PutEvents
then awaits its group commit (tastemaker.realtime.writer) without holding a thread.
A request body is refused (413) before it is read, from its Content-Length, or as soon as a streamed body
grows past the limit of the operation it names (tastemaker.api.limits).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from tastemaker.api import service_models
from tastemaker.api.convert import to_python, to_wire
from tastemaker.api.keys import KeyStore
from tastemaker.api.limits import body_limit, body_limits, too_large
from tastemaker.api.operations import implemented, inline_operations
from tastemaker.api.request_id import current, new_request_id
from tastemaker.api.sigv4 import Credential, HeaderLists, check_service
from tastemaker.api.validation import precompile_all, validate_input
from tastemaker.control.common import check_request_regions
from tastemaker.control.context import RequestContext
from tastemaker.errors import (
    InternalFailure,
    NotImplementedOperation,
    RequestEntityTooLargeException,
    SerializationException,
    TastemakerError,
    UnknownOperationException,
)
from tastemaker.monitoring.requests import (
    CONTROL_PLANE,
    HEALTH_PATHS,
    METRICS_PATH,
    PROMETHEUS_CONTENT_TYPE,
    Monitor,
)
from tastemaker.realtime.inline import NotWarm, inline
from tastemaker.realtime.wire import FAST_INPUTS
from tastemaker.services import Services
from tastemaker.serving.deployments import FRESH_SECONDS
from tastemaker.serving.engine import WireAnswer

log = logging.getLogger("tastemaker.api")
INLINE = inline_operations()
# Control-plane calls that change what an existing campaign, recommender, filter or event tracker serves or
# accepts: the answer waits until every serving process has seen the change (serving/deployments.py).
SETTLE_OPERATIONS = frozenset({
    "UpdateCampaign", "DeleteCampaign", "UpdateRecommender", "DeleteRecommender", "StartRecommender",
    "StopRecommender", "DeleteFilter", "CreateEventTracker", "DeleteEventTracker",
})
# The SigV4 signing names of the models answered here (personalize; monitoring and cloudtrail for the
# CloudWatch and CloudTrail read operations): each request must be signed for its own operation's model.
SIGNING_NAMES = frozenset(service_models.service_model(s).signing_name
                          for s in (*service_models.SERVICE_NAMES, *service_models.EXTRA_OPERATIONS))
JSON11 = "application/x-amz-json-1.1"
JSON = "application/json"
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Reply:
    """An HTTP answer: status, body and content type (plus the AWS error type header for errors)."""

    __slots__ = ("body", "close", "error_type", "media_type", "query_error", "status")

    def __init__(self, body: bytes, status: int = 200, media_type: str = JSON, error_type: str | None = None,
                 close: bool = False):
        self.body = body
        self.status = status
        self.media_type = media_type
        self.error_type = error_type
        self.close = close  # end the connection after the answer (a request body was left unread)
        self.query_error: str | None = None

    async def send(self, send: Send) -> None:
        headers = [(b"content-type", self.media_type.encode()), (b"content-length", str(len(self.body)).encode()),
                   (b"x-amzn-requestid", current.get().encode())]
        if self.error_type:
            headers.append((b"x-amzn-errortype", self.error_type.encode()))
        if self.query_error:
            headers.append((b"x-amzn-query-error", self.query_error.encode()))
        if self.close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def error_reply(exc: TastemakerError, protocol: str) -> Reply:
    body = orjson.dumps({"__type": exc.code, "message": exc.message})
    status = exc.status
    if protocol == "json" and 400 < status < 500 and status not in (403, 413):
        status = 400  # the control-plane model has no status codes; AWS answers 400 (but 403/413 come from HTTP)
    reply = Reply(body, status, JSON11 if protocol == "json" else JSON, exc.code)
    reply.query_error = getattr(exc, "query_error", None)  # CloudWatch's former query-protocol code
    return reply



def wire_payload(info: service_models.OperationInfo, result: Any) -> dict[str, Any]:
    """An operation's result as its response JSON: through the output shape, or as is when the operation built
    it in wire form already (GetRecommendations' WireAnswer)."""
    if isinstance(result, WireAnswer):
        return result
    if info.output_shape is None:
        return {}
    payload: dict[str, Any] = to_wire(info.output_shape, result or {})
    return payload

class Api:
    """Routes a signed request to the registered operation and serialises its answer."""

    def __init__(self, services: Services, keys: KeyStore) -> None:
        self.services = services
        self.keys = keys
        keys.attach(services.read_engine, services.settings)  # the database's scoped keys, kept fresh
        self.operations = implemented()
        self.max_skew = timedelta(seconds=services.settings.max_skew_seconds)
        # Operations that may answer ResourceNotFoundException: an ARN of another region in their input is one
        # (the others, List* with a parent filter, list the caller's region only and so answer an empty page).
        self.region_checked = frozenset(info.name for info in service_models.all_operations()
                                        if any(e.name == "ResourceNotFoundException" for e in info.model.error_shapes))
        precompile_all(info.model for info in service_models.all_operations())
        body_limits()
        self.monitor = Monitor(services)

    @staticmethod
    def route(method: str, path: str, headers: HeaderLists) -> service_models.OperationInfo | None:
        """The operation a request names (X-Amz-Target, else method + path), or None; reads no body."""
        target = headers.first("x-amz-target")
        if target:
            return service_models.operation_for_target(target)
        return service_models.operation_for_path(method, path)

    def find_operation(self, method: str, path: str, headers: HeaderLists) -> service_models.OperationInfo:
        """The operation, else UnknownOperationException as AWS answers: 400 for the json protocol (a bad or
        missing X-Amz-Target on POST /), 404 for any other method or path no operation answers."""
        target = headers.first("x-amz-target")
        if target:
            info = service_models.operation_for_target(target)
            if info is None or method.upper() != "POST":
                raise UnknownOperationException(
                    f"Unknown operation in X-Amz-Target: {target}. Control-plane calls are POST / with "
                    "X-Amz-Target: AmazonPersonalize.<Operation>, e.g. AmazonPersonalize.ListDatasetGroups.")
            return info
        info = service_models.operation_for_path(method, path)
        if info is None:
            unknown = UnknownOperationException(
                f"No Personalize operation answers {method} {path}: control-plane calls are "
                "POST / with an X-Amz-Target header; runtime and events calls use their documented paths.")
            if not (method.upper() == "POST" and path in ("", "/")):
                unknown.status = 404
            raise unknown
        return info

    async def handle(self, scope: Scope, body: bytes, headers: HeaderLists | None = None) -> Reply:
        started = time.perf_counter()
        if headers is None:
            headers = HeaderLists.from_asgi(scope["headers"])
        protocol = "json" if headers.first("x-amz-target") else "rest-json"
        info = credential = raw = params = error = None
        payload: Any = None
        try:
            method = scope["method"]
            raw_path = scope.get("raw_path") or scope["path"].encode()
            credential = self.keys.verify(method, raw_path.decode("latin-1"),
                                          scope["query_string"].decode("latin-1"), headers, body,
                                          max_skew=self.max_skew)
            if credential.service not in SIGNING_NAMES:  # signed for a service not spoken here (e.g. s3)
                check_service(credential)
            info = self.find_operation(method, scope["path"], headers)
            check_service(credential, info.model.service_model.signing_name)  # monitoring, cloudtrail, personalize
            protocol = info.protocol
            fn = self.operations.get(info.name)
            if fn is None:
                raise NotImplementedOperation(
                    f"Tastemaker does not implement {info.name} yet; see docs/api-coverage.md for what is built.")
            try:
                raw = orjson.loads(body) if body.strip() else {}
            except orjson.JSONDecodeError as exc:
                raise SerializationException(f"The request body is not valid JSON: {exc}.") from exc
            if not isinstance(raw, dict):
                raise SerializationException(
                    f"The request body must be a JSON object, not {type(raw).__name__}: send {{...}}.")
            self.keys.authorize(credential, info, raw)  # the key's policy (AccessDeniedException)
            fast = FAST_INPUTS.get(info.name)  # PutEvents: straight-line checks; None -> the generic walker
            params = fast(raw) if fast is not None else None
            if params is None:
                params = to_python(info.input_shape, validate_input(info.model, raw))
            ctx = RequestContext(self.services, credential.region)
            if info.name in self.region_checked:
                check_request_regions(ctx, params)
            if info.service == "personalize-events" and not self.services.serving.deployments.changes.fresh():
                await run_in_threadpool(self.services.serving.deployments.changes.current, self.services)
            result = await self.run(info.name, fn, ctx, params)
            if info.name in SETTLE_OPERATIONS:
                await asyncio.sleep(FRESH_SECONDS)  # read-your-writes for every worker and replica
            payload = wire_payload(info, result)
            reply = Reply(orjson.dumps(payload), media_type=info.content_type)
        except TastemakerError as exc:
            error = exc
            reply = error_reply(exc, protocol)
        except Exception as exc:
            log.exception("unhandled error")
            error = InternalFailure(f"Internal error: {type(exc).__name__}. The server log has the details.")
            reply = error_reply(error, protocol)
        await self.observe(scope, headers, started, info, credential, raw, params, payload, reply.status, error)
        return reply

    async def observe(self, scope: Scope, headers: HeaderLists, started: float,
                       info: service_models.OperationInfo | None, credential: Credential | None, raw: Any,
                       params: dict[str, Any] | None, payload: Any, status: int, error: TastemakerError | None,
                       ) -> None:
        """The request's log line and metrics, and its audit record when it is a control-plane call."""
        if info is None and error is not None:
            info = self.route(scope["method"], scope["path"], headers)
        key_id = credential.access_key_id if credential else _claimed_key(headers)
        audited = info is None or info.service == CONTROL_PLANE  # who and from where: only the audit needs it
        client = scope.get("client") if audited else None
        audit = self.monitor.answered(
            started=started, request_id=current.get(), operation=info.name if info else None,
            service=info.service if info else None, input_shape=info.input_shape if info else None,
            access_key_id=key_id, username=self.keys.name_of(key_id) if key_id and audited else None,
            region=credential.region if credential else self.services.settings.default_region, raw=raw,
            params=params, payload=payload, status=status, error_code=error.code if error else None,
            error_message=error.message if error else None, source_ip=client[0] if client else None,
            user_agent=headers.first("user-agent") if audited else None)
        if audit is not None:
            try:
                await run_in_threadpool(audit)
            except Exception:
                log.exception("could not write the audit record of %s", current.get())

    async def run(self, name: str, fn: Callable[..., Any], ctx: RequestContext, params: dict[str, Any]) -> Any:
        """The operation inline on the event loop when it may and can (warm), else in the thread pool."""
        started = time.perf_counter()
        if name in INLINE:
            try:
                with inline():
                    answer = fn(ctx, **params)
            except NotWarm as cold:
                log.debug("%s needs the thread pool (%s)", name, cold)
            else:  # an inline operation may end in an awaitable: waiting without a thread (PutEvents' commit)
                return await answer if hasattr(type(answer), "__await__") else answer
            result = await run_in_threadpool(fn, ctx, **params)
            # What the cold request loaded (model, catalogue, indexes: millions of objects) lives as long as
            # the deployment: keep it out of the cyclic collector, whose full passes over it were the worst
            # pauses under load. Unreferenced objects are still freed by reference counting.
            gc.freeze()
            return result
        result = await run_in_threadpool(fn, ctx, **params)
        log.debug("%s took %.1f ms", name, (time.perf_counter() - started) * 1000)
        return result


class Application:
    """The ASGI entry point: /ping (the trivial endpoint: the framework's ceiling), every API call, and the
    lifespan hooks that start and stop the embedded job runner."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.on_startup: list[Callable[[], None]] = []
        self.on_shutdown: list[Callable[[], None]] = []
        self.mounts: list[tuple[str, Callable[[Scope, Receive, Send], Awaitable[None]]]] = []  # e.g. /console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            started = time.perf_counter()
            new_request_id()
            if scope["path"] == "/ping" and scope["method"] == "GET":
                await Reply(b"ok", media_type="text/plain; charset=utf-8").send(send)
                return
            for prefix, mounted in self.mounts:
                if scope["path"] == prefix or scope["path"].startswith(prefix + "/"):
                    await mounted(scope, receive, send)
                    return
            headers = HeaderLists.from_asgi(scope["headers"])
            if scope["method"] == "GET" and scope["path"] in (*HEALTH_PATHS, METRICS_PATH):
                await (await self.plain(scope, headers)).send(send)
                return
            try:
                body = await _read_limited_body(scope, headers, receive)
            except RequestEntityTooLargeException as exc:
                reply = error_reply(exc, "json" if headers.first("x-amz-target") else "rest-json")
                reply.close = True
                await reply.send(send)
                await self.api.observe(scope, headers, started, None, None, None, None, None, reply.status, exc)
                return
            reply = await self.api.handle(scope, body, headers)
            await reply.send(send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def plain(self, scope: Scope, headers: HeaderLists) -> Reply:
        """/health and /ready without credentials; /metrics signed with any accepted key (like a call)."""
        monitor = self.api.monitor
        if scope["path"] != METRICS_PATH:
            status, body = await run_in_threadpool(monitor.health, scope["path"])
            return Reply(body, status)
        try:
            raw_path = scope.get("raw_path") or scope["path"].encode()
            self.api.keys.verify("GET", raw_path.decode("latin-1"), scope["query_string"].decode("latin-1"),
                                 headers, b"", max_skew=self.api.max_skew)
        except TastemakerError as exc:
            return error_reply(exc, "rest-json")
        return Reply(await run_in_threadpool(monitor.exposition), media_type=PROMETHEUS_CONTENT_TYPE)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for hook in self.on_startup:
                        hook()
                except Exception as exc:  # noqa: BLE001 - reported to the server, which exits
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                # The thread pool's first use imports anyio's asyncio backend (~25 ms) and starts a worker
                # thread: done here, not in the first request that runs in the pool (a first CreateCampaign
                # after a start took 33-45 ms against 4-6 ms for the next ones).
                await run_in_threadpool(_nothing)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self.on_shutdown:
                    hook()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _nothing() -> None:
    """What the lifespan startup runs in the thread pool to ready it."""


async def _read_limited_body(scope: Scope, headers: HeaderLists, receive: Receive) -> bytes:
    """The request body, refused with RequestEntityTooLargeException past the limit of the operation it names:
    at once from Content-Length (nothing read), else as soon as the streamed (chunked) body grows past it."""
    info = Api.route(scope["method"], scope["path"], headers)
    name = info.name if info is not None else None
    limit = body_limit(name)
    declared = headers.first("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise too_large(name, limit, int(declared))
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(name, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _claimed_key(headers: HeaderLists) -> str | None:
    """The access key id a refused request's Authorization header names (never anything after it)."""
    auth = headers.first("authorization") or ""
    start = auth.find("Credential=")
    if start < 0:
        return None
    key = auth[start + 11:].split("/", 1)[0].split(",", 1)[0].strip()
    return key[:128] or None


def build_app(services: Services, keys: KeyStore) -> Application:
    app = Application(Api(services, keys))
    app.on_shutdown.append(app.api.monitor.flush)  # the buffered request lines (a worker exits without atexit)
    return app
