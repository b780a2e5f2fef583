"""The HTTP server: one port for the control plane (JSON 1.1), the runtime and the events APIs."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tastemaker.api import service_models
from tastemaker.api.convert import to_python, to_wire
from tastemaker.api.keys import KeyStore
from tastemaker.api.sigv4 import verify_sigv4
from tastemaker.api.validation import precompile_all, validate_input
from tastemaker.control.context import RequestContext, Services
from tastemaker.control.registry import load_all
from tastemaker.errors import InternalFailure, InvalidInputException, NotImplementedOperation, TastemakerError

log = logging.getLogger("tastemaker.api")
JSON11 = "application/x-amz-json-1.1"


def error_response(exc: TastemakerError, protocol: str) -> Response:
    body = orjson.dumps({"__type": exc.code, "message": exc.message})
    status = exc.status
    if protocol == "json" and 400 < status < 500 and status != 403:
        status = 400  # the control-plane model has no status codes; AWS answers 400
    return Response(body, status_code=status, headers={"x-amzn-ErrorType": exc.code},
                    media_type=JSON11 if protocol == "json" else "application/json")


class Api:
    """Routes a signed request to the registered operation and serialises its answer."""

    def __init__(self, services: Services, keys: KeyStore) -> None:
        self.services = services
        self.keys = keys
        self.operations = load_all()
        precompile_all(info.model for info in service_models.all_operations())

    def find_operation(self, request: Request) -> service_models.OperationInfo:
        target = request.headers.get("x-amz-target")
        if target:
            info = service_models.operation_for_target(target)
            if info is None:
                raise InvalidInputException(f"Unknown operation in X-Amz-Target: {target}.")
            return info
        info = service_models.operation_for_path(request.method, request.url.path)
        if info is None:
            raise InvalidInputException(
                f"No Personalize operation answers {request.method} {request.url.path}: control-plane calls are "
                "POST / with an X-Amz-Target header; runtime and events calls use their documented paths.")
        return info

    async def handle(self, request: Request) -> Response:
        protocol = "json" if request.headers.get("x-amz-target") else "rest-json"
        try:
            body = await request.body()
            raw_path = request.scope.get("raw_path") or request.url.path.encode()
            credential = verify_sigv4(request.method, raw_path.decode("latin-1"), request.url.query,
                                      request.headers, body,
                                      self.keys.secret_for,
                                      max_skew=_skew(self.services.settings.max_skew_seconds))
            info = self.find_operation(request)
            protocol = info.protocol
            fn = self.operations.get(info.name)
            if fn is None:
                raise NotImplementedOperation(
                    f"Tastemaker does not implement {info.name} yet; see docs/api-coverage.md for what is built.")
            try:
                raw = orjson.loads(body) if body.strip() else {}
            except orjson.JSONDecodeError as exc:
                raise InvalidInputException(f"The request body is not valid JSON: {exc}.") from exc
            params = validate_input(info.model, raw)
            ctx = RequestContext(self.services, credential.region)
            started = time.perf_counter()
            result = await run_in_threadpool(fn, ctx, **to_python(info.input_shape, params))
            log.debug("%s took %.1f ms", info.name, (time.perf_counter() - started) * 1000)
            payload = to_wire(info.output_shape, result or {}) if info.output_shape is not None else {}
            media = JSON11 if protocol == "json" else "application/json"
            return Response(orjson.dumps(payload), media_type=media)
        except TastemakerError as exc:
            return error_response(exc, protocol)
        except Exception as exc:
            log.exception("unhandled error")
            return error_response(InternalFailure(f"Internal error: {type(exc).__name__}. The server log has "
                                                  "the details."), protocol)


def _skew(seconds: int) -> Any:
    from datetime import timedelta

    return timedelta(seconds=seconds)


def build_app(services: Services, keys: KeyStore) -> Starlette:
    api = Api(services, keys)

    async def ping(_request: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/{path:path}", api.handle, methods=["POST", "GET", "PUT", "DELETE"]),
    ]
    app = Starlette(routes=routes)
    app.state.api = api
    return app
