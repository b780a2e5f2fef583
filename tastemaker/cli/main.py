"""The `tastemaker` command: serve, worker, db upgrade, coverage, keys."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tastemaker.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        host=getattr(args, "host", None), port=getattr(args, "port", None), data_dir=args.data_dir,
        db_url=args.db_url, blob_url=args.blob_url, import_roots=getattr(args, "import_root", None),
        account_id=getattr(args, "account_id", None), job_threads=getattr(args, "job_threads", None),
        workers=getattr(args, "workers", None), redis_url=getattr(args, "redis_url", None))


def _add_state_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="directory for the SQLite file, blobs and keys (default ./.tastemaker)")
    parser.add_argument("--db-url", help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default SQLite)")
    parser.add_argument("--blob-url", help="blob store: a directory or s3://bucket/prefix (default DATA_DIR/blobs)")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tastemaker.cli.wiring import build_server_app

    settings = _settings(args)
    if settings.workers > 1:
        from tastemaker.cli.wiring import prepare_workers

        runner = prepare_workers(settings)
        print(f"Tastemaker listening on http://{settings.host}:{settings.port} with {settings.workers} worker "
              "processes", flush=True)
        try:
            uvicorn.run("tastemaker.cli.wiring:app_from_env", factory=True, workers=settings.workers,
                        host=settings.host, port=settings.port, log_level=args.log_level, access_log=False)
        finally:
            if runner is not None:
                runner.stop()
        return 0
    app = build_server_app(settings)
    print(f"Tastemaker listening on http://{settings.host}:{settings.port} (web console: "
          f"http://{settings.host}:{settings.port}/console)", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from tastemaker.cli.wiring import build_runner, build_services

    settings = _settings(args)
    services = build_services(settings, serves_requests=False)
    runner = build_runner(services, settings.job_threads or 1)
    runner.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    runner.stop()
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from tastemaker.store import db

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db.upgrade(db.create_engine(settings.resolved_db_url))
    print(f"database at {settings.resolved_db_url} is up to date")
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    from tastemaker.api.coverage import render_markdown

    text = render_markdown()
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_evaluation(args: argparse.Namespace) -> int:
    """Print a solution version's evaluation evidence (per held-out query: input, truth, recommended)."""
    from tastemaker.cli.wiring import build_services
    from tastemaker.store import resources

    services = build_services(_settings(args), migrate=False)
    with services.read_engine.connect() as conn:
        version = resources.get(conn, args.solution_version, "solution_version")
    prefix = version.body.get("model_prefix")
    if not prefix or not services.blobs.exists(prefix + "evaluation.json"):
        print(f"{args.solution_version} has no evaluation report (it is not ACTIVE, or was trained without one).",
              file=sys.stderr)
        return 1
    data = services.blobs.get_bytes(prefix + "evaluation.json")
    if args.output:
        Path(args.output).write_bytes(data)
    else:
        sys.stdout.write(data.decode() + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tastemaker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server (and embedded job workers)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    _add_state_flags(serve)
    serve.add_argument("--import-root", action="append", default=None,
                       help="local directory that import jobs may read (repeatable)")
    serve.add_argument("--account-id", default=None)
    serve.add_argument("--job-threads", type=int, default=None, help="embedded job worker threads (0 = none)")
    serve.add_argument("--workers", type=int, default=None, help="API worker processes")
    serve.add_argument("--redis-url", default=None,
                       help="keep real-time state (recent events per user/session) in Redis, shared by replicas")
    serve.add_argument("--log-level", default="warning")
    serve.set_defaults(fn=cmd_serve)

    worker = sub.add_parser("worker", help="run job workers only (imports, training, batch jobs)")
    _add_state_flags(worker)
    worker.add_argument("--job-threads", type=int, default=None)
    worker.add_argument("--import-root", action="append", default=None)
    worker.set_defaults(fn=cmd_worker)

    dbp = sub.add_parser("db", help="database maintenance")
    dbsub = dbp.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply Alembic migrations")
    _add_state_flags(up)
    up.set_defaults(fn=cmd_db_upgrade)

    ev = sub.add_parser("evaluation", help="print the evidence behind a solution version's metrics (JSON)")
    ev.add_argument("--solution-version", required=True, help="the solution version ARN")
    ev.add_argument("--output", help="write to this file instead of stdout")
    _add_state_flags(ev)
    ev.set_defaults(fn=cmd_evaluation)

    cov = sub.add_parser("coverage", help="print the API coverage table (markdown)")
    cov.add_argument("--output", help="write to this file instead of stdout")
    cov.set_defaults(fn=cmd_coverage)

    from tastemaker.cli import cleanup, quickstart

    quick = sub.add_parser("quickstart", help="walk the whole admin manual against a server, printing each call")
    quickstart.add_arguments(quick)
    quick.set_defaults(fn=quickstart.cmd_quickstart)

    from tastemaker.cli import deployments

    deps = sub.add_parser("deployments", help="list campaigns and recommenders with the memory they serve from")
    deployments.add_arguments(deps)
    deps.set_defaults(fn=deployments.cmd_deployments)

    clean = sub.add_parser("cleanup", help="delete everything in a dataset group, in dependency order")
    cleanup.add_arguments(clean)
    clean.set_defaults(fn=cleanup.cmd_cleanup)

    from tastemaker.cli import keys

    keyp = sub.add_parser("keys", help="manage scoped access keys (create, list, rotate, disable, enable, delete)")
    keys.add_arguments(keyp)
    keyp.set_defaults(fn=keys.cmd_keys)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
