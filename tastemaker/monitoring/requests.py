"""What the API layer calls once per answered request: the log line, the metrics, and (for control-plane
calls) the audit record; plus the plain HTTP endpoints /health, /ready and /metrics.

`Monitor.answered` costs a few microseconds on the hot path (one series update, and with request logging on
one formatted line appended to the log's buffer, written in batches: tastemaker.monitoring.logs) and returns the audit write for control-plane calls, which the API runs in its thread pool
before it answers. A PutEvents call's dimension is its event tracker's ARN, looked up from its trackingId in a
small cache (refreshed from the store, at most once a second, when an unknown trackingId arrives).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from botocore.model import Shape

from tastemaker.control.event_trackers import trackers_by_tracking_id
from tastemaker.monitoring import audit, health, logs, prometheus, shared
from tastemaker.monitoring.metrics import METRICS
from tastemaker.services import Services

log = logging.getLogger("tastemaker.monitoring")
CONTROL_PLANE = "personalize"
HEALTH_PATHS = ("/health", "/ready")
METRICS_PATH = "/metrics"
PROMETHEUS_CONTENT_TYPE = prometheus.CONTENT_TYPE
_metrics_server_started = threading.Lock()
WIRE_DIMENSIONS = (("campaignArn", "campaign_arn"), ("recommenderArn", "recommender_arn"),
                   ("datasetArn", "dataset_arn"), ("trackingId", "tracking_id"))


class Monitor:
    """One per API process: logs, metrics and audit for every request it answers."""

    def __init__(self, services: Services, runner_alive: Callable[[], bool] | None = None) -> None:
        self.services = services
        settings = services.settings
        logs.configure(settings.log_level, settings.log_format)
        self.registry = prometheus.registry(services)
        self.runner_alive = runner_alive
        self.count_requests = settings.request_metrics
        self._trackers: dict[str, str] = {}
        self._trackers_read_at = 0.0
        shared.share(settings)
        if settings.metrics_port and _metrics_server_started.acquire(blocking=False):
            try:
                prometheus.serve(self.registry, settings.metrics_port, settings.metrics_host)
            except OSError:  # with --workers N the first worker binds it; each shows every worker's figures
                log.debug("another worker serves --metrics-port %d", settings.metrics_port)

    def answered(self, *, started: float, request_id: str, operation: str | None, service: str | None,
                 input_shape: Shape | None, access_key_id: str | None, username: str | None, region: str,
                 raw: Any, params: dict[str, Any] | None, payload: Any, status: int, error_code: str | None,
                 error_message: str | None, source_ip: str | None, user_agent: str | None,
                 ) -> Callable[[], None] | None:
        """Log and count one answered request; returns the audit write for a control-plane call (else None)."""
        now = time.time()
        latency = (time.perf_counter() - started) * 1000.0
        name = operation or "Unknown"
        dimension = None
        if params is None and isinstance(raw, dict):  # refused by validation: its dimension from the wire
            params = {name: raw[wire] for wire, name in WIRE_DIMENSIONS if isinstance(raw.get(wire), str)}
        if params is not None and "tracking_id" in params:
            arn = self._tracker_arn(params["tracking_id"])
            dimension = ("EventTrackerArn", arn) if arn else None
        if self.count_requests:
            METRICS.request(now, name, params, status, latency, dimension)
        if logs.REQUESTS.enabled:
            arn = (_arn_of(params) or _arn_of(payload)) if dimension is None else dimension[1]
            logs.REQUESTS.write(now, request_id, name, arn, access_key_id, status, latency, error_code)
        if service != CONTROL_PLANE and service is not None:
            return None
        if operation is None and access_key_id is None:
            return None  # neither a signed call nor a named operation: noise, not an audit event
        return partial(audit.record_call, self.services, now=now, request_id=request_id, operation_name=name,
                       input_shape=input_shape, params=raw, response=payload, access_key_id=access_key_id,
                       username=username, region=region, source_ip=source_ip, user_agent=user_agent,
                       error_code=error_code, error_message=error_message)

    @staticmethod
    def flush() -> None:
        """Write the buffered request log lines now (at shutdown)."""
        logs.REQUESTS.flush()

    def _tracker_arn(self, tracking_id: Any) -> str | None:
        if not isinstance(tracking_id, str):
            return None
        arn = self._trackers.get(tracking_id)
        if arn is None and time.monotonic() - self._trackers_read_at > 1.0:
            self._trackers_read_at = time.monotonic()
            try:
                with self.services.read_engine.connect() as conn:
                    self._trackers = {tid: t.arn for tid, t in trackers_by_tracking_id(conn).items()}
            except Exception:
                log.warning("could not read event trackers for the PutEvents metrics", exc_info=True)
            arn = self._trackers.get(tracking_id)
        return arn

    # --- plain HTTP endpoints -------------------------------------------------------------------------------

    def health(self, path: str) -> tuple[int, bytes]:
        if path == "/health":
            return health.alive()
        return health.ready(health.checks(self.services, self.runner_alive))

    def exposition(self) -> bytes:
        return prometheus.exposition(self.registry)


def _arn_of(params: Any) -> str | None:
    """The ARN a request names (its campaign, recommender or dataset first), or its answer names."""
    if not params or not isinstance(params, dict):
        return None
    for key in ("campaign_arn", "recommender_arn", "dataset_arn"):
        value = params.get(key)
        if value:
            return str(value)
    for key, value in params.items():
        if key.lower().endswith("arn") and isinstance(value, str):
            return value
    return None
