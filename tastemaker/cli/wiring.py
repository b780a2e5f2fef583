"""Build the process's Services from Settings (the only place that wires store, blobs, jobs and api)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from tastemaker.config import Settings
from tastemaker.control.context import Services
from tastemaker.store import db
from tastemaker.store.blobs import open_blob_store


def build_services(settings: Settings, *, migrate: bool = True) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.imports_dir.mkdir(parents=True, exist_ok=True)
    engine = db.create_engine(settings.resolved_db_url)
    if migrate:
        db.upgrade(engine)
    blobs = open_blob_store(settings.resolved_blob_url, s3_endpoint_url=settings.s3_endpoint_url,
                            cache_dir=settings.cache_dir)
    return Services(settings=settings, engine=engine, blobs=blobs)


def build_server_app(settings: Settings, *, announce: bool = True) -> Starlette:
    """The ASGI app with its embedded job runner started and stopped by the app's lifespan."""
    from tastemaker.api.app import build_app
    from tastemaker.api.keys import KeyStore, boto3_snippet
    from tastemaker.jobs.worker import JobRunner

    services = build_services(settings)
    keys = KeyStore.load(settings)
    if keys.created and announce:
        endpoint = f"http://{settings.host}:{settings.port}"
        print("Tastemaker generated an access key (stored in "
              f"{settings.data_dir / 'credentials.json'}, mode 0600). Use it like this:\n")
        print(boto3_snippet(keys.root, endpoint, settings.default_region), flush=True)
    app = build_app(services, keys)
    runner = JobRunner(services, settings.job_threads)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if settings.job_threads > 0:
            runner.start()
        try:
            yield
        finally:
            runner.stop()

    app.router.lifespan_context = lifespan
    app.state.services = services
    return app
