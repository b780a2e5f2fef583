"""`/health` (the process answers) and `/ready` (what it depends on answers), without credentials.

Readiness checks the metadata store (a round trip), the blob store (a lookup of a key that need not exist),
Redis when configured (PING) and the embedded job runner (its threads are alive), each by name; the answer
says which passed, never why one failed (the reason goes to the server log).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson

from tastemaker.services import Services
from tastemaker.store import stats

log = logging.getLogger("tastemaker.monitoring")
Check = Callable[[], object]


def checks(services: Services, runner_alive: Callable[[], bool] | None) -> dict[str, Check]:
    """The readiness checks of a server process: each raises (or returns False) when its part is down."""
    found: dict[str, Check] = {
        "metadata_store": lambda: _database(services),
        "blob_store": lambda: _blobs(services),
    }
    if services.settings.redis_url:
        found["redis"] = lambda: _redis(services.settings.redis_url or "")
    if runner_alive is not None:
        found["job_runner"] = runner_alive
    return found


def _database(services: Services) -> None:
    with services.read_engine.connect() as conn:
        stats.ping(conn)


def _blobs(services: Services) -> None:
    services.blobs.exists("health/ready-probe")  # answers False for the missing key; raises when unreachable


def _redis(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    finally:
        client.close()


def ready(found: dict[str, Check]) -> tuple[int, bytes]:
    """(200 or 503, a JSON body naming each check and whether it passed)."""
    results: dict[str, str] = {}
    for name, check in found.items():
        try:
            ok = check() is not False
            if not ok:
                log.warning("readiness check %s failed", name)
        except Exception:
            log.warning("readiness check %s failed", name, exc_info=True)
            ok = False
        results[name] = "ok" if ok else "failing"
    status = 200 if all(v == "ok" for v in results.values()) else 503
    return status, orjson.dumps({"status": "ready" if status == 200 else "not ready", "checks": results})


def alive() -> tuple[int, bytes]:
    return 200, orjson.dumps({"status": "ok"})
