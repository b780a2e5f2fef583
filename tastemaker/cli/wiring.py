"""Build the process's Services from Settings (the only place that wires store, blobs, jobs and api)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import sqlalchemy as sa

from tastemaker.config import Settings
from tastemaker.services import Services
from tastemaker.store import db
from tastemaker.store.blobs import BlobStore, open_blob_store

if TYPE_CHECKING:
    from tastemaker.api.app import Application
    from tastemaker.api.keys import KeyStore
    from tastemaker.jobs.worker import JobRunner


def build_services(settings: Settings, *, migrate: bool = True, serves_requests: bool = True) -> Services:
    """Open the stores named by the settings (migrating the database unless told not to)."""
    db.make_private(settings.data_dir, directory=True)
    settings.imports_dir.mkdir(parents=True, exist_ok=True)
    engine = db.create_engine(settings.resolved_db_url)
    if migrate:
        db.upgrade(engine)
    blobs = open_blob_store(settings.resolved_blob_url, s3_endpoint_url=settings.s3_endpoint_url,
                            cache_dir=settings.cache_dir)
    return make_services(settings, engine, blobs, serves_requests=serves_requests)


def make_services(settings: Settings, engine: sa.Engine, blobs: BlobStore, *,
                  serves_requests: bool = True) -> Services:
    """The process container over open stores, with empty serving and real-time state."""
    from tastemaker.realtime.caches import RealtimeCaches
    from tastemaker.serving.caches import ServingCaches

    return Services(settings=settings, engine=engine, blobs=blobs, serving=ServingCaches(),
                    realtime=RealtimeCaches(engine, settings.redis_url), serves_requests=serves_requests)


def build_runner(services: Services, threads: int) -> JobRunner:
    """Job runner threads over the one task registry (not started)."""
    from tastemaker.cli.job_tasks import TASKS
    from tastemaker.jobs.worker import JobRunner

    return JobRunner(services, threads, TASKS)


def build_server_app(settings: Settings, *, announce: bool = True, migrate: bool = True) -> Application:
    """The ASGI app with its embedded job runner started and stopped by the app's lifespan."""
    # One BLAS thread per API process: request-sized matrix products are slower, not faster, with a
    # thread pool, and several worker processes already use the cores. Training runs in subprocesses.
    from threadpoolctl import threadpool_limits

    from tastemaker.api.app import build_app
    from tastemaker.api.keys import KeyStore
    from tastemaker.serving.deploy import warm_kernels

    threadpool_limits(1, user_api="blas")
    services = build_services(settings, migrate=migrate)
    keys = KeyStore.load(settings)
    if keys.created and announce:
        announce_key(keys, settings)
    app = build_app(services, keys)
    from tastemaker.console.app import PREFIX, build_console

    app.mounts.append((PREFIX, build_console(app.api)))
    runner = build_runner(services, settings.job_threads)
    if settings.job_threads > 0:
        app.on_startup.append(runner.start)
        app.api.monitor.runner_alive = runner.alive
    else:  # an API worker of `serve --workers N`: the imports its first CreateCampaign or model load would wait
        # for, and the serving kernels its first request on a model would compile or load from numba's cache
        app.on_startup.append(lambda: _in_background(warm_kernels, services))
    app.on_shutdown.append(runner.stop)
    return app


def _in_background(step: typing.Callable[[Services], object], services: Services) -> None:
    def run() -> None:
        try:
            step(services)
        except Exception:  # only a head start: the first request that needs it does the work
            logging.getLogger("tastemaker").exception("%s failed", getattr(step, "__name__", step))

    threading.Thread(target=run, name="start-up-warm", daemon=True).start()


def announce_key(keys: KeyStore, settings: Settings, out: TextIO | None = None) -> None:
    """Say where the generated key is. The secret itself goes only to an interactive terminal: a server's
    stdout usually ends up in a service log (systemd, docker logs), which must never hold a secret."""
    from tastemaker.api.keys import boto3_snippet

    out = out or sys.stdout
    where = settings.data_dir / "credentials.json"
    if out.isatty():
        endpoint = f"http://{settings.host}:{settings.port}"
        print(f"Tastemaker generated an access key (stored in {where}, mode 0600). Use it like this:\n", file=out)
        print(boto3_snippet(keys.root, endpoint, settings.default_region), file=out, flush=True)
    else:
        print(f"Tastemaker generated an access key {keys.root.access_key_id}; its secret is in {where} (mode 0600, "
              "not printed because this output is not a terminal).", file=out, flush=True)


# --- several API worker processes (`tastemaker serve --workers N`) --------------------------------------

SETTINGS_ENV = "TASTEMAKER_SERVE_SETTINGS"  # the parent's Settings as JSON, read by each worker's app factory


def settings_to_json(settings: Settings) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        return value

    return json.dumps({f.name: plain(getattr(settings, f.name)) for f in dataclasses.fields(settings)})


def settings_from_json(text: str) -> Settings:
    raw = json.loads(text)
    hints = typing.get_type_hints(Settings)
    values: dict[str, Any] = {}
    for name, value in raw.items():
        hint = str(hints.get(name, ""))
        if "Path" in hint and isinstance(value, list):
            value = tuple(Path(v) for v in value)
        elif "Path" in hint and isinstance(value, str):
            value = Path(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return Settings(**values)


def prepare_workers(settings: Settings) -> JobRunner | None:
    """In the parent, before workers start: migrate the database once, create the access key once, and start
    the job runner here (returned; None with --job-threads 0). The parent only supervises the workers, so jobs
    (polling, imports, training orchestration) never take the GIL from a process that serves requests: with
    the runner inside a serving worker, its polls were a visible share of that worker's slowest requests."""
    from tastemaker.api.keys import KeyStore

    services = build_services(settings, serves_requests=False)
    keys = KeyStore.load(settings)
    if keys.created:
        announce_key(keys, settings)
    os.environ[SETTINGS_ENV] = settings_to_json(dataclasses.replace(settings, job_threads=0))
    if settings.job_threads <= 0:
        services.engine.dispose()
        return None
    runner = build_runner(services, settings.job_threads)
    runner.start()
    return runner


def app_from_env() -> Application:
    """uvicorn app factory for worker processes (they serve only: the parent runs the jobs)."""
    settings = settings_from_json(os.environ[SETTINGS_ENV])
    _exit_with_parent()
    return build_server_app(settings, announce=False, migrate=False)


def _exit_with_parent(every_seconds: float = 0.5) -> None:
    """A worker whose parent died (kill -9, out of memory) shuts down gracefully rather than serving on as an
    orphan that holds the port, so that the server can be started again."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_seconds)
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's own handler: finish in-flight requests, then exit

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
