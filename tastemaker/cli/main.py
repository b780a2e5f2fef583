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
        workers=getattr(args, "workers", None), redis_url=getattr(args, "redis_url", None),
        log_level=getattr(args, "log_level", None), log_format=getattr(args, "log_format", None),
        metrics_port=getattr(args, "metrics_port", None), spark_master=getattr(args, "spark_master", None))


def _add_monitoring_flags(parser: argparse.ArgumentParser, *, metrics: bool) -> None:
    from tastemaker.monitoring.logs import FORMATS, LEVELS

    parser.add_argument("--log-level", choices=LEVELS, default=None,
                        help="stderr log level (default info: one line per request and per job state change)")
    parser.add_argument("--log-format", choices=FORMATS, default=None, help="text (default) or json lines")
    if metrics:
        parser.add_argument("--metrics-port", type=int, default=None,
                            help="also serve Prometheus /metrics unauthenticated on this loopback port")


def _add_spark_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spark-master", default=None,
                        help="run large work on this Spark master, e.g. local[4] or spark://host:7077: batch "
                             "inference and segment jobs, imports and ALS training above their size settings "
                             "(docs/configuration.md; needs the extra tastemaker[spark]; default "
                             "TASTEMAKER_SPARK_MASTER)")


def _add_state_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="directory for the SQLite file, blobs and keys (default ./.tastemaker)")
    parser.add_argument("--db-url", help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default SQLite)")
    parser.add_argument("--blob-url", help="blob store: a directory or s3://bucket/prefix (default DATA_DIR/blobs)")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tastemaker.cli.wiring import build_server_app
    from tastemaker.monitoring.logs import configure

    settings = _settings(args)
    _require_free_port(settings.host, settings.port)
    configure(settings.log_level, settings.log_format)  # this process's logs (with --workers: the job runner's)
    if settings.workers > 1:
        from tastemaker.cli.wiring import prepare_workers
        from tastemaker.cli.workers import reuse_port_supported, run_workers

        runner = prepare_workers(settings)
        print(f"Tastemaker listening on http://{settings.host}:{settings.port} with {settings.workers} worker "
              "processes", flush=True)
        try:
            if reuse_port_supported():  # a socket per worker: the kernel spreads connections over them
                return run_workers(settings.workers, settings.host, settings.port, settings.log_level)
            uvicorn.run("tastemaker.cli.wiring:app_from_env", factory=True, workers=settings.workers,
                        host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False)
        finally:
            if runner is not None:
                runner.stop()
        return 0
    app = build_server_app(settings)
    print(f"Tastemaker listening on http://{settings.host}:{settings.port} (web console: "
          f"http://{settings.host}:{settings.port}/console)", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False)
    return 0


def _require_free_port(host: str, port: int) -> None:
    """Fail before anything starts when the address is taken (a second `make run`), with what to do."""
    from tastemaker.cli.failures import CommandFailed
    from tastemaker.cli.workers import bound_socket

    try:
        bound_socket(host, port, reuse_port=False).close()
    except OSError as exc:
        raise CommandFailed(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}. Another server (a second `make run`?) "
            f"may hold the port: stop it, or choose another port with --port N (`make run PORT=N`).") from exc


def cmd_worker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from threadpoolctl import threadpool_limits

    from tastemaker.cli.wiring import build_runner, build_services
    from tastemaker.monitoring.logs import configure

    settings = _settings(args)
    configure(settings.log_level, settings.log_format)
    # One BLAS thread, as `serve`: the jobs run here share the cores (training runs in subprocesses), and a
    # batch job's scores then have the same last bits whichever process, or Spark, computed them.
    threadpool_limits(1, user_api="blas")
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


def cmd_compile_kernels(_args: argparse.Namespace) -> int:
    """Compile the serving kernels into numba's on-disk cache (once per installation; `make install` runs it)."""
    import time

    from tastemaker.serving.deploy import compile_kernels

    started = time.perf_counter()
    compile_kernels()
    sys.stdout.write(f"serving kernels compiled into numba's cache in {time.perf_counter() - started:.1f} s\n")
    return 0


def cmd_evaluation(args: argparse.Namespace) -> int:
    """Print a solution version's evaluation evidence (per held-out query: input, truth, recommended)."""
    from tastemaker.cli.wiring import build_services
    from tastemaker.store.records import SolutionVersion, load

    services = build_services(_settings(args), migrate=False)
    with services.read_engine.connect() as conn:
        version = load(conn, args.solution_version, SolutionVersion)
    prefix = version.model_prefix
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


def cmd_import_report(args: argparse.Namespace) -> int:
    """Print what a dataset import job imported and the rows it skipped (count and first examples), as JSON."""
    import json

    from tastemaker.cli.wiring import build_services
    from tastemaker.store import resources

    services = build_services(_settings(args), migrate=False)
    with services.read_engine.connect() as conn:
        job = resources.get(conn, args.arn, "dataset_import_job")
    body = job.body
    report = {"datasetImportJobArn": job.arn, "status": job.status, "importedRows": body.get("row_count"),
              "skippedRows": body.get("skipped_rows", 0), "skippedExamples": body.get("skipped_examples", []),
              "ignoredColumns": body.get("ignored_columns", []),
              "failureReason": body.get("failure_reason")}
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from tastemaker import __version__

    parser = argparse.ArgumentParser(prog="tastemaker", description=__doc__)
    parser.add_argument("--version", action="version", version=f"tastemaker {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server (and embedded job workers)")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--port", type=int, default=None, help="port to listen on (default 8080)")
    _add_state_flags(serve)
    serve.add_argument("--import-root", action="append", default=None,
                       help="local directory that import jobs may read (repeatable)")
    serve.add_argument("--account-id", default=None, help="the account id in ARNs (default 000000000000)")
    serve.add_argument("--job-threads", type=int, default=None, help="embedded job worker threads (0 = none)")
    serve.add_argument("--workers", type=int, default=None, help="API worker processes")
    serve.add_argument("--redis-url", default=None,
                       help="keep real-time state (recent events per user/session) in Redis, shared by replicas")
    _add_spark_flag(serve)
    _add_monitoring_flags(serve, metrics=True)
    serve.set_defaults(fn=cmd_serve)

    worker = sub.add_parser("worker", help="run job workers only (imports, training, batch jobs)")
    _add_state_flags(worker)
    worker.add_argument("--job-threads", type=int, default=None, help="job threads in this process (default 2)")
    worker.add_argument("--import-root", action="append", default=None,
                        help="local directory that import jobs may read (repeatable)")
    _add_spark_flag(worker)
    _add_monitoring_flags(worker, metrics=False)
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

    rep = sub.add_parser("import-report", help="what a dataset import job imported and skipped (JSON)")
    rep.add_argument("arn", help="the dataset import job ARN")
    _add_state_flags(rep)
    rep.set_defaults(fn=cmd_import_report)

    cov = sub.add_parser("coverage", help="print the API coverage table (markdown)")
    cov.add_argument("--output", help="write to this file instead of stdout")
    cov.set_defaults(fn=cmd_coverage)

    kern = sub.add_parser("compile-kernels", help="compile the serving kernels into numba's cache (once after an "
                          "install; else the first GetRecommendations after the first deploy waits ~25 s for it)")
    kern.set_defaults(fn=cmd_compile_kernels)

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

    from tastemaker.cli import backup

    back = sub.add_parser("backup", help="copy the metadata, blobs and keys into a folder, while the server runs")
    backup.add_backup_arguments(back)
    _add_state_flags(back)
    back.set_defaults(fn=lambda a: backup.cmd_backup(a, _settings(a)))
    rest = sub.add_parser("restore", help="bring a backup into an empty data dir / database / blob store")
    backup.add_restore_arguments(rest)
    _add_state_flags(rest)
    rest.set_defaults(fn=lambda a: backup.cmd_restore(a, _settings(a)))

    from tastemaker.cli import gc

    gcp = sub.add_parser("gc", help="reclaim disk by the retention policy (orphan blobs, old versions, jobs, events)")
    gc.add_arguments(gcp)
    _add_state_flags(gcp)
    gcp.set_defaults(fn=lambda a: gc.cmd_gc(a, _settings(a)))

    import importlib

    # Commands whose module brings its own arguments (`add_arguments`) and entry point (`cmd_<name>`).
    for name, help_text in (
        ("audit", "read the audit trail of control-plane calls (filters, --json)"),
        ("ingest", "feed an event tracker from a Kinesis stream or a Redis Stream"),
        ("webhooks", "notify URLs, EventBridge or SNS of resource state changes"),
        ("attribution", "attributed metrics per campaign, recommender and source"),
        ("keys", "manage scoped access keys (create, list, rotate, disable, enable, delete)"),
        ("jobs", "list queued and running jobs, with the progress of batch jobs"),
        ("explain", "why a campaign or recommender recommends each item (events, neighbours, slot, filter)"),
    ):
        module = importlib.import_module(f"tastemaker.cli.{name}")
        command = sub.add_parser(name, help=help_text)
        module.add_arguments(command)
        command.set_defaults(fn=getattr(module, f"cmd_{name}"))
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:
        from tastemaker.cli.failures import report

        status = report(args.command, exc)
        if status is None:
            raise
        return status


if __name__ == "__main__":
    sys.exit(main())
