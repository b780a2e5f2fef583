"""botocore's service models for the three Personalize APIs, indexed for routing."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import botocore.session
from botocore import xform_name
from botocore.model import OperationModel, ServiceModel, Shape

# boto3 client names of the services Tastemaker speaks, in routing order.
SERVICE_NAMES: tuple[str, ...] = ("personalize", "personalize-runtime", "personalize-events")


@dataclass(frozen=True)
class OperationInfo:
    """One operation of one service model, with what routing and (de)serialisation need."""

    service: str  # boto3 client name, e.g. "personalize-runtime"
    name: str  # e.g. "GetRecommendations"
    protocol: str  # "json" or "rest-json"
    http_method: str  # e.g. "POST"
    request_uri: str  # e.g. "/recommendations" ("/" for the json control plane)
    target: str | None  # X-Amz-Target value for json services, e.g. "AmazonPersonalize.CreateCampaign"
    model: OperationModel
    input_shape: Shape | None
    output_shape: Shape | None

    @property
    def snake_name(self) -> str:
        """The Python name of the operation, e.g. "create_campaign" (what handlers are called)."""
        return xform_name(self.name)


@functools.cache
def service_model(service: str) -> ServiceModel:
    """The botocore ServiceModel for one of SERVICE_NAMES (loaded once)."""
    if service not in SERVICE_NAMES:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICE_NAMES)}")
    return _session().get_service_model(service)


@functools.lru_cache(maxsize=1)
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@functools.lru_cache(maxsize=1)
def all_operations() -> tuple[OperationInfo, ...]:
    """Every operation of the three models (79 with botocore 1.43/1.44), service by service."""
    infos: list[OperationInfo] = []
    for service in SERVICE_NAMES:
        model = service_model(service)
        prefix = model.metadata.get("targetPrefix")
        for name in model.operation_names:
            op = model.operation_model(name)
            infos.append(
                OperationInfo(
                    service=service,
                    name=name,
                    protocol=model.protocol,
                    http_method=op.http.get("method", "POST").upper(),
                    request_uri=op.http.get("requestUri", "/"),
                    target=f"{prefix}.{name}" if model.protocol == "json" and prefix else None,
                    model=op,
                    input_shape=op.input_shape,
                    output_shape=op.output_shape,
                )
            )
    return tuple(infos)


@functools.lru_cache(maxsize=1)
def _by_target() -> dict[str, OperationInfo]:
    return {info.target: info for info in all_operations() if info.target is not None}


@functools.lru_cache(maxsize=1)
def _by_route() -> dict[tuple[str, str], OperationInfo]:
    routes: dict[tuple[str, str], OperationInfo] = {}
    for info in all_operations():
        if info.protocol != "rest-json":
            continue
        key = (info.http_method, info.request_uri)
        if key in routes:  # the models never collide today; fail loudly if a new botocore makes them
            raise RuntimeError(f"two operations share {key}: {routes[key].name} and {info.name}")
        routes[key] = info
    return routes


def operation_for_target(target: str) -> OperationInfo | None:
    """The json-protocol operation named by an `X-Amz-Target` header (`AmazonPersonalize.<Op>`), or None."""
    return _by_target().get(target.strip())


def operation_for_path(method: str, path: str) -> OperationInfo | None:
    """The rest-json operation for an HTTP method and (decoded) path such as `/recommendations`, or None.

    A single trailing slash is tolerated (`/events/` routes like `/events`).
    """
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return _by_route().get((method.upper(), path))


def operation_by_name(service: str, name: str) -> OperationInfo | None:
    """Look an operation up by service and model name, e.g. ("personalize-events", "PutEvents")."""
    for info in all_operations():
        if info.service == service and info.name == name:
            return info
    return None
