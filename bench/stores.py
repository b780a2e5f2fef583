"""Load on the stores per request: PostgreSQL and SQLite per PutEvents call, Redis per PutEvents and GetRecommendations.

    .venv/bin/python bench/stores.py [--calls 3000] [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]
                                     [--sqlite-calls 40000] [--skip postgres,sqlite,redis]

PostgreSQL: a scratch database (created and dropped here) with the project's `events` table
(tastemaker.store.tables), written with the project's group-commit insert (tastemaker.store.events
.insert_requests: one statement, one durable commit) for PutEvents calls of 10 events, one call per commit and
8 calls per commit (what group commit makes of concurrent calls). Measured on the server side: the CPU time of
the PostgreSQL backend serving the connection (/proc/<pg_backend_pid>/stat: same host), and the WAL bytes written
(pg_current_wal_lsn), per call.

SQLite: the same insert (8 calls of 10 events per commit, the parameters built beforehand) into a fresh WAL
database file with the project's `events` table, against the same table whose partition column holds an integer
instead of the ~70-byte ARN (what a narrow-key migration would give: every index of the table begins with the
partition, so each index entry carries it). Rounds alternate between the two; per call: the CPU time of this
process (SQLite runs in it: user + system), and the bytes of the database and WAL files at the end.

Redis: a private redis-server (no persistence, a free port) so that nothing else counts; the project's
RedisState records PutEvents calls (10 events, one Lua script call each) and answers recent_events reads (what
each GetRecommendations of a user with streamed events does). Measured: the server's own CPU (INFO cpu:
used_cpu_user + used_cpu_sys) and its command count (INFO commandstats) per call.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GROUP = "arn:aws:personalize:us-east-1:000000000000:dataset-group/bench"


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def event_rows(call: int) -> list[dict[str, Any]]:
    now = time.time()
    user = f"user-{random.randrange(1_000_000)}"
    return [{"dataset_group_arn": GROUP, "event_id": f"{call}-{k}-{uuid.uuid4().hex[:8]}", "session_id": f"s-{user}",
             "user_id": user, "item_id": f"item-{random.randrange(100_000)}", "event_type": "click",
             "event_value": None, "sent_at": now, "record": {"USER_ID": user, "EVENT_TYPE": "click"},
             "received_at": now} for k in range(10)]


def postgres(url: str, calls: int) -> None:
    import sqlalchemy as sa

    from tastemaker.store import events, tables

    name = f"tm_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = sa.create_engine(url.rsplit("/", 1)[0] + "/" + name)
    try:
        tables.metadata.create_all(engine, tables=[tables.events])
        raw = events.raw_connection(engine)
        cursor = raw.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
        print(f"PostgreSQL ({url.split('@')[-1]}), {calls:,} PutEvents calls of 10 events, load average "
              f"{os.getloadavg()[0]:.1f}")
        for per_commit in (1, 8):
            cursor.execute("SELECT pg_current_wal_lsn()")
            lsn0 = cursor.fetchone()[0]
            cpu, wall = backend_cpu(pid), time.perf_counter()
            for start in range(0, calls, per_commit):
                plain = [events.postgres_params(event_rows(start + k)) for k in range(per_commit)]
                events.insert_requests(raw, True, plain, [])
            wall, cpu = time.perf_counter() - wall, backend_cpu(pid) - cpu
            cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (lsn0,))
            wal = float(cursor.fetchone()[0])
            print(f"  {per_commit} call(s) per commit: backend cpu {cpu / calls * 1e6:7.1f} us per call, "
                  f"WAL {wal / calls:7.0f} B per call, {calls / wall:8,.0f} calls/s from one connection "
                  f"(wall, client included)")
        cursor.close()
        raw.close()
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def sqlite_figures(calls: int, rounds: int = 3) -> None:
    import resource
    import statistics

    import sqlalchemy as sa

    from tastemaker.store import db, events, tables

    narrow = sa.MetaData()
    narrow_events = tables.events.to_metadata(narrow)
    narrow_events.c.dataset_group_arn.type = sa.Integer()
    variants = {"ARN partition key (today)": (tables.events, GROUP), "integer partition key": (narrow_events, 1)}
    per_commit = 8
    calls -= calls % per_commit
    batches = []
    for start in range(0, calls, per_commit):
        batch = []
        for k in range(per_commit):
            rows = event_rows(start + k)
            batch.append([events.sqlite_params(row) for row in rows])
        batches.append(batch)
    print(f"SQLite (WAL, synchronous=NORMAL), {calls:,} PutEvents calls of 10 events, {per_commit} calls per commit, "
          f"{rounds} alternating rounds, load average {os.getloadavg()[0]:.1f}")
    results: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (table, partition) in variants.items():
            folder = Path(tempfile.mkdtemp(prefix="tm-stores-sqlite-"))
            engine = db.create_engine(f"sqlite:///{folder / 'events.db'}")
            try:
                table.metadata.create_all(engine, tables=[table])
                raw = events.raw_connection(engine)
                typed = [[[(partition, *row[1:]) for row in call] for call in batch] for batch in batches]
                before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                for batch in typed:
                    events.insert_requests(raw, False, batch, [])
                wall, after = time.perf_counter() - wall, resource.getrusage(resource.RUSAGE_SELF)
                raw.close()
                size = sum(f.stat().st_size for f in folder.iterdir())
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                results[name].append((cpu / calls, (after.ru_stime - before.ru_stime) / calls, calls / wall, size))
            finally:
                engine.dispose()
                for f in folder.iterdir():
                    f.unlink()
                folder.rmdir()
        for name in variants:
            print(f"  round: {name}: {results[name][-1][0] * 1e6:6.1f} us CPU per call")
    base = statistics.median(r[0] for r in results["ARN partition key (today)"])
    for name in variants:
        cpu = statistics.median(r[0] for r in results[name])
        sys_ = statistics.median(r[1] for r in results[name])
        rate = statistics.median(r[2] for r in results[name])
        print(f"  {name}: {cpu * 1e6:6.1f} us CPU per call ({sys_ * 1e6:5.1f} system; {cpu / base:.2f}x today), "
              f"{rate * 10:8,.0f} events/s from one connection (median of {rounds}); files {results[name][-1][3] / 2**20:.0f} MiB "
              f"at the end of a round")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_figures(calls: int) -> None:
    import redis

    from tastemaker.realtime.redis_state import RedisState
    from tastemaker.realtime.state import RecentEvent

    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", folder], stdout=subprocess.DEVNULL)
        try:
            client = redis.Redis(host="127.0.0.1", port=port)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            state = RedisState(client)
            users = [f"user-{u}" for u in range(max(1, calls // 5))]

            def sample() -> tuple[float, int]:
                cpu = client.info("cpu")
                stats = client.info("commandstats")
                return (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
                        sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info"))

            print(f"Redis (private redis-server {port}), {calls:,} calls each, load average {os.getloadavg()[0]:.1f}")
            cpu0, n0 = sample()
            for call in range(calls):
                user = users[call % len(users)]
                now = time.time()
                state.record_events(GROUP, user, f"s-{user}", [
                    RecentEvent(f"item-{random.randrange(100_000)}", ("click", "watch")[k % 2], now + k, None,
                                event_id=f"{call}-{k}", received_at=now) for k in range(10)])
            cpu1, n1 = sample()
            for call in range(calls):
                state.recent_events(GROUP, users[call % len(users)])
            cpu2, n2 = sample()
            # INFO calls themselves are excluded from the command counts; their CPU is negligible at this size.
            print(f"  PutEvents (10 events, 2 event types): {(cpu1 - cpu0) / calls * 1e6:6.1f} us server cpu, "
                  f"{(n1 - n0 - 1) / calls:5.1f} commands per call (one EVALSHA; the rest run inside it)")
            print(f"  GetRecommendations' recent_events read: {(cpu2 - cpu1) / calls * 1e6:6.1f} us server cpu, "
                  f"{(n2 - n1 - 1) / calls:5.1f} commands per call (2 round trips)")
        finally:
            server.terminate()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--pg-url", default=os.environ.get("TASTEMAKER_BENCH_PG_URL",
                                                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--sqlite-calls", type=int, default=40_000, help="PutEvents calls per SQLite round")
    parser.add_argument("--skip", default="", help="any of postgres, sqlite, redis (comma-separated)")
    args = parser.parse_args()
    random.seed(0)
    if "postgres" not in args.skip:
        postgres(args.pg_url, args.calls)
    if "sqlite" not in args.skip:
        sqlite_figures(args.sqlite_calls)
    if "redis" not in args.skip:
        redis_figures(args.calls)


if __name__ == "__main__":
    main()
