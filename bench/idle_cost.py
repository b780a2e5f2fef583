"""What an idle `tastemaker serve` costs: CPU per second of each of its processes, read from /proc.

Starts a real server (SQLite in its data directory, or a fresh PostgreSQL database made for the run and
dropped after it), sends one GetRecommendations per API worker process (an unknown campaign: enough to start
each process's change watch, as the first real request does), lets it settle, then reads utime+stime of the
server and its children over `--seconds` and prints CPU % of a core per process. `--against OTHER_CHECKOUT`
runs the other checkout's code in alternate rounds, so a before/after is measured under the same load.

    .venv/bin/python bench/idle_cost.py --store sqlite --seconds 30
    .venv/bin/python bench/idle_cost.py --store postgresql --workers 2 --against /work/main --rounds 2
    .venv/bin/python bench/idle_cost.py --store sqlite --no-poke     # never asked anything (no change watch)

`--latency` measures instead, in this process, how long a change to a watched row committed by another engine
takes to reach a running change watch (the stamps a request would use), and `--job-start` how long a job
enqueued by another engine (another replica) waits before a runner of a server claims it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

CODE = Path(sys.argv[sys.argv.index("--code") + 1]) if "--code" in sys.argv else Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CODE))

POSTGRES = os.environ.get("TASTEMAKER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree(pid: int) -> list[int]:
    """The process and its descendants."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            children = (task / "children").read_text().split()
            todo.extend(int(c) for c in children)
    return out


class Database:
    """The metadata store of one round: a SQLite file in the server's folder, or a fresh PostgreSQL database."""

    def __init__(self, store: str, folder: Path) -> None:
        self.store, self.name = store, f"tm_idle_{uuid.uuid4().hex[:10]}"
        self.url = f"sqlite:///{folder / 'tastemaker.db'}" if store == "sqlite" else \
            POSTGRES.rsplit("/", 1)[0] + f"/{self.name}"
        if store == "postgresql":
            self._admin(f'CREATE DATABASE "{self.name}"')

    def _admin(self, sql: str) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(sql))
        engine.dispose()

    def drop(self) -> None:
        if self.store == "postgresql":
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def start_server(code: Path, folder: Path, db_url: str, workers: int) -> Any:
    from tastemaker.cli.local_server import LocalServer

    env = {"PYTHONPATH": str(code), "TASTEMAKER_DB_URL": db_url}
    return LocalServer(folder, env=env, extra_args=["--workers", str(workers)]).start()


def poke(server: Any, workers: int) -> None:
    """Start every API process's change watch, as any GetRecommendations does (the campaign does not exist)."""
    for index in range(6 * workers):
        runtime = server.client("personalize-runtime")  # a new connection each: the workers share the port
        try:
            runtime.get_recommendations(campaignArn=f"arn:aws:personalize:us-east-1:000000000000:campaign/x{index}",
                                        userId="u")
        except runtime.exceptions.ResourceNotFoundException:
            pass


def idle_round(code: Path, store: str, workers: int, seconds: float, settle: float, do_poke: bool) -> list[float]:
    """CPU % of a core of each process of one idle server (the parent first)."""
    with tempfile.TemporaryDirectory(prefix="tm-idle-") as tmp:
        db = Database(store, Path(tmp))
        try:
            server = start_server(code, Path(tmp), db.url, workers)
            try:
                if do_poke:
                    poke(server, workers)
                time.sleep(settle)
                pids = tree(server.process.pid)
                before = {pid: cpu_seconds(pid) for pid in pids}
                started = time.monotonic()
                time.sleep(seconds)
                elapsed = time.monotonic() - started
                return [100 * (cpu_seconds(pid) - before[pid]) / elapsed for pid in pids]
            finally:
                server.stop()
        finally:
            db.drop()


def latency_round(store: str, changes_made: int, asking: bool) -> list[float]:
    """Seconds from the commit of a change to a watched row (another engine) to a running watch's stamps; with
    `asking`, a request uses the stamps every 100 ms meanwhile (a serving process with traffic), else none does
    (an idle one)."""
    from types import SimpleNamespace

    from tastemaker.serving.deployments import ChangeWatch
    from tastemaker.store import db as store_db
    from tastemaker.store import resources
    from tastemaker.store.status import Status

    with tempfile.TemporaryDirectory(prefix="tm-idle-") as tmp:
        database = Database(store, Path(tmp))
        try:
            writer = store_db.create_engine(database.url)
            store_db.upgrade(writer)
            reader = store_db.create_engine(database.url)
            services = SimpleNamespace(engine=reader, read_engine=store_db.read_only(reader),
                                       realtime=SimpleNamespace(targets=SimpleNamespace(reload=lambda _s: None)),
                                       serving=SimpleNamespace(trackers=SimpleNamespace(forget_all=lambda: None)))
            watch = ChangeWatch()
            watch.current(services)  # starts its thread
            done = threading.Event()

            def ask() -> None:
                while not done.wait(0.1):
                    if hasattr(watch, "fresh"):
                        watch.fresh()

            if asking:
                threading.Thread(target=ask, daemon=True).start()
            time.sleep(7.0)  # past the watch's IDLE_SECONDS
            out = []
            for index in range(changes_made):
                arn = f"arn:aws:personalize:us-east-1:000000000000:filter/f{index}"
                with writer.begin() as conn:
                    resources.insert(conn, arn=arn, kind="filter", body={"name": f"f{index}"},
                                     status=Status.ACTIVE)
                committed = time.monotonic()
                while arn not in watch.stamps:
                    time.sleep(0.0005)
                out.append(time.monotonic() - committed)
                time.sleep(0.3 + 0.2 * (index % 3))  # idle between changes, at varying phases of any poll
            done.set()
            writer.dispose()
            reader.dispose()
            return out
        finally:
            database.drop()


def job_start_round(code: Path, store: str, jobs_made: int) -> list[float]:
    """Seconds from the commit of an enqueue by another process (a replica on another host: no wake-up
    datagram reaches this runner, since the enqueuing engine has another URL spelling) to the claim."""
    import sqlalchemy as sa

    from tastemaker.store import db as store_db
    from tastemaker.store import queue
    from tastemaker.store.tables import jobs

    with tempfile.TemporaryDirectory(prefix="tm-idle-") as tmp:
        database = Database(store, Path(tmp))
        try:
            server = start_server(code, Path(tmp), database.url, 1)
            try:
                # Same database, another spelling of its URL: queue_wake's socket name differs, as across hosts.
                other = database.url.replace("sqlite:///", "sqlite:////") if store == "sqlite" else \
                    database.url + "?application_name=other-replica"
                engine = store_db.create_engine(other)
                time.sleep(2.0)
                out = []
                for index in range(jobs_made):
                    with engine.begin() as conn:  # a job for a resource that does not exist: it fails at once
                        job_id = queue.enqueue(conn, queue.JobKind.ACTIVATE,
                                               f"arn:aws:personalize:us-east-1:000000000000:dataset-group/j{index}")
                    committed = time.monotonic()
                    while True:
                        with engine.connect() as conn:
                            state = conn.execute(sa.select(jobs.c.state).where(jobs.c.id == job_id)).scalar()
                        if state != queue.QUEUED:
                            break
                        time.sleep(0.001)
                    out.append(time.monotonic() - committed)
                    time.sleep(0.5 + 0.3 * (index % 4))
                engine.dispose()
                return out
            finally:
                server.stop()
        finally:
            database.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=8.0, help="seconds after start (and the pokes) before measuring")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-poke", action="store_true", help="measure a server that was never asked anything")
    parser.add_argument("--against", type=Path, help="another checkout, measured in alternate rounds")
    parser.add_argument("--code", type=Path, help="measure this checkout's tastemaker (default: this one)")
    parser.add_argument("--latency", type=int, metavar="N", help="time N changes reaching a change watch instead")
    parser.add_argument("--job-start", type=int, metavar="N", help="time N jobs from enqueue to claim instead")
    parser.add_argument("--asking", action="store_true", help="--latency with a request every 100 ms meanwhile")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {time.strftime('%H:%M:%S', time.gmtime())} UTC", flush=True)
    if args.latency:
        found = latency_round(args.store, args.latency, args.asking)
        print(f"{CODE} {args.store}{' asking' if args.asking else ''}: change -> watch, ms: median {1000 * statistics.median(found):.1f}, "
              f"max {1000 * max(found):.1f}, all {[round(1000 * x, 1) for x in found]}")
        return
    sides = [("this", CODE)] + ([("against", args.against.resolve())] if args.against else [])
    os.chdir(tempfile.gettempdir())  # `python -m` puts the working directory first on sys.path: not a checkout
    if args.job_start:
        for name, code in sides:
            found = job_start_round(code, args.store, args.job_start)
            print(f"{name} {args.store}: enqueue -> claimed, ms: median {1000 * statistics.median(found):.1f}, "
                  f"max {1000 * max(found):.1f}, all {[round(1000 * x, 1) for x in found]}", flush=True)
        return
    for round_index in range(args.rounds):
        for name, code in (sides if round_index % 2 == 0 else sides[::-1]):
            shares = idle_round(code, args.store, args.workers, args.seconds, args.settle, not args.no_poke)
            print(f"round {round_index + 1} {name:7s} {args.store} --workers {args.workers}: CPU % of a core per "
                  f"process {[round(s, 2) for s in shares]}, total {sum(shares):.2f} "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)


if __name__ == "__main__":
    main()
