"""botocore's service models for the three Personalize APIs (and the CloudWatch/CloudTrail read operations that
expose Tastemaker's own metrics and audit trail), indexed for routing.

A model that lists several protocols is answered in the one botocore negotiates (`resolved_protocol`: the
first of its priority list the model offers). For CloudWatch with botocore 1.44 that is JSON 1.0 (X-Amz-Target
`GraniteServiceVersion20100801.<Op>`, errors with `x-amzn-query-error` for its former query-protocol codes);
CloudTrail is JSON 1.1. Both route by X-Amz-Target like the Personalize control plane.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import botocore.session
from botocore import xform_name
from botocore.model import OperationModel, ServiceModel, Shape

# boto3 client names of the services Tastemaker speaks, in routing order.
SERVICE_NAMES: tuple[str, ...] = ("personalize", "personalize-runtime", "personalize-events")
# Other services on the same port, only the operations Tastemaker implements (tastemaker.monitoring).
EXTRA_OPERATIONS: dict[str, tuple[str, ...]] = {
    "cloudwatch": ("ListMetrics", "GetMetricStatistics", "GetMetricData"),
    "cloudtrail": ("LookupEvents",),
}


@dataclass(frozen=True)
class OperationInfo:
    """One operation of one service model, with what routing and (de)serialisation need."""

    service: str  # boto3 client name, e.g. "personalize-runtime"
    name: str  # e.g. "GetRecommendations"
    protocol: str  # "json" or "rest-json"
    content_type: str  # of the answer: application/x-amz-json-1.1 (or 1.0), or application/json for rest-json
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
    if service not in SERVICE_NAMES and service not in EXTRA_OPERATIONS:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICE_NAMES)}")
    return _session().get_service_model(service)


@functools.lru_cache(maxsize=1)
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@functools.lru_cache(maxsize=1)
def all_operations() -> tuple[OperationInfo, ...]:
    """Every operation of the three Personalize models (79 with botocore 1.43/1.44), service by service."""
    return tuple(info for service in SERVICE_NAMES
                 for info in _infos(service, service_model(service).operation_names))


@functools.lru_cache(maxsize=1)
def extra_operations() -> tuple[OperationInfo, ...]:
    """The CloudWatch and CloudTrail operations Tastemaker answers (EXTRA_OPERATIONS)."""
    return tuple(info for service, names in EXTRA_OPERATIONS.items() for info in _infos(service, names))


def _infos(service: str, names: list[str] | tuple[str, ...]) -> list[OperationInfo]:
    model = service_model(service)
    prefix = model.metadata.get("targetPrefix")
    protocol = getattr(model, "resolved_protocol", None) or model.protocol
    if protocol not in ("json", "rest-json"):
        raise RuntimeError(f"botocore speaks {protocol} to {service}; Tastemaker answers json and rest-json only")
    content_type = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.1')}" if protocol == "json" \
        else "application/json"
    infos: list[OperationInfo] = []
    for name in names:
        op = model.operation_model(name)
        infos.append(OperationInfo(
            service=service,
            name=name,
            protocol=protocol,
            content_type=content_type,
            http_method=op.http.get("method", "POST").upper(),
            request_uri=op.http.get("requestUri", "/"),
            target=f"{prefix}.{name}" if protocol == "json" and prefix else None,
            model=op,
            input_shape=op.input_shape,
            output_shape=op.output_shape,
        ))
    return infos


@functools.lru_cache(maxsize=1)
def _by_target() -> dict[str, OperationInfo]:
    return {info.target: info for info in (*all_operations(), *extra_operations()) if info.target is not None}


@functools.lru_cache(maxsize=1)
def _by_route() -> dict[tuple[str, str], OperationInfo]:
    routes: dict[tuple[str, str], OperationInfo] = {}
    for info in (*all_operations(), *extra_operations()):
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
    for info in (*all_operations(), *extra_operations()):
        if info.service == service and info.name == name:
            return info
    return None
