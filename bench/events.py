"""Ingestion benchmark: SigV4-signed PutEvents (10 events per call) from a separate load-generator process.

Throughput: wrk (one process per API replica) replays DISTINCT pre-signed PutEvents (unique eventIds, random
users and items; enough that wrk never wraps around, else it says so); prints sustained events/s, latency p50/p99,
acknowledged (2xx x 10) against stored (rows in `events` after the run), for SQLite and PostgreSQL. Without wrk
(or with --replay), an asyncio generator replays such requests, saturated and then paced at --offered events/s
(latency counted from when each request was due), and the CPU per call leaves out the idle server's background
CPU measured just before each phase. Then a crash
run (the Python generator, which knows exactly which batches were acknowledged) that kill -9s the server mid-load,
restarts it, and checks that every acknowledged event is stored and no batch is stored in part.

Then visibility: how long after PutEvents returns 200 (a) GetRecommendations for that user reflects the event
(an EXCLUDE-clicked filter hides the item just clicked) and (b) a recent_events read of the real-time state sees
it; p50/p99 over --probes probes, with the embedded state and with Redis (if reachable).

    .venv/bin/python bench/events.py                    # SQLite + PostgreSQL (if reachable) + crash runs
    .venv/bin/python bench/events.py --seconds 20 --connections 16 --backends sqlite --replicas 2
    .venv/bin/python bench/events.py --backends none --visibility embedded,redis --probes 50
    .venv/bin/python bench/events.py --backends sqlite,postgresql --seconds 8 --visibility none --replay
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import multiprocessing as mp
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tastemaker.cli.local_server import LocalServer

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
SCHEMA = {
    "type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
    "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
               {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"},
               {"name": "EVENT_VALUE", "type": ["null", "float"]},
               {"name": "DEVICE", "type": ["null", "string"], "categorical": True}],
    "version": "1.0",
}


# --- the load generator (runs in its own process) ---------------------------------------------------------


class Signer:
    """A minimal SigV4 signer for POST requests with a JSON body (what boto3 sends for personalize-events)."""

    def __init__(self, access_key: str, secret_key: str, region: str, host: str) -> None:
        self.access_key, self.secret_key, self.region, self.host = access_key, secret_key, region, host
        self._day = ""
        self._key = b""

    def _signing_key(self, day: str) -> bytes:
        if day != self._day:
            key = ("AWS4" + self.secret_key).encode()
            for part in (day, self.region, "personalize", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._day, self._key = day, key
        return self._key

    def headers(self, path: str, body: bytes, now: datetime | None = None) -> dict[str, str]:
        now = now or datetime.now(UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload = hashlib.sha256(body).hexdigest()
        signed = "content-type;host;x-amz-date"
        canonical = (f"POST\n{path}\n\ncontent-type:application/json\nhost:{self.host}\nx-amz-date:{stamp}\n\n"
                     f"{signed}\n{payload}")
        scope = f"{day}/{self.region}/personalize/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        return {"Content-Type": "application/json", "X-Amz-Date": stamp, "Host": self.host,
                "Authorization": f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                                 f"SignedHeaders={signed}, Signature={signature}"}


def generate_load(cfg: dict[str, Any], out_path: str) -> None:
    """Send PutEvents from `connections` threads for `seconds`; write acknowledged batches and latencies."""
    ports = cfg["ports"]
    signers = {port: Signer(cfg["access_key"], cfg["secret_key"], cfg["region"], f"127.0.0.1:{port}")
               for port in ports}
    deadline = time.time() + cfg["seconds"]
    acked: list[str] = []  # batch ids (each batch = 10 events with ids <batch>-0..9)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    run = uuid.uuid4().hex[:6]

    def worker(index: int) -> None:
        port = ports[index % len(ports)]
        signer = signers[port]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        seq = 0
        mine: list[str] = []
        lat: list[float] = []
        while time.time() < deadline:
            batch = f"{run}-{index}-{seq}"
            seq += 1
            now = time.time()
            body = orjson.dumps({
                "trackingId": cfg["tracking_id"], "sessionId": f"s-{index}-{seq % 50}",
                "userId": f"u-{index}-{seq % 50}",
                "eventList": [{"eventId": f"{batch}-{j}", "eventType": "click", "itemId": f"i{(seq * 7 + j) % 997}",
                               "sentAt": now, "eventValue": 1.0, "properties": '{"device": "ios"}'}
                              for j in range(10)],
            })
            started = time.perf_counter()
            try:
                conn.request("POST", "/events", body=body, headers=signer.headers("/events", body))
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                name = type(exc).__name__
                with lock:
                    errors[name] = errors.get(name, 0) + 1
                conn.close()
                if cfg.get("stop_on_error"):
                    break
                time.sleep(0.05)
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            if status == 200:
                mine.append(batch)
                lat.append(time.perf_counter() - started)
            else:
                with lock:
                    errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
        with lock:
            acked.extend(mine)
            latencies.extend(lat)

    started = time.time()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(cfg["connections"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    Path(out_path).write_bytes(orjson.dumps({"acked": acked, "latencies": latencies, "errors": errors,
                                             "elapsed": time.time() - started}))


# --- the asyncio generator (no wrk): distinct pre-signed requests, each sent once ---------------------------


def replay_load(cfg: dict[str, Any], out_path: str) -> None:
    """Replay pre-signed requests over `connections` keep-alive connections, each request at most once.

    rate None: closed loop (each connection sends its next request when the previous answer arrived).
    rate R: paced, request k is due at start + k / R; its latency is counted from when it was DUE, not from
    when a connection got round to sending it, so a server that falls behind shows its queueing (no
    coordinated omission). Stops at `seconds` or when the requests run out (then says so); paced, it sends
    nothing more once it is 2 s past the end (a server that fell behind: the rest is counted as late).
    """
    import asyncio

    async def run() -> dict[str, Any]:
        lists = [Path(name).read_bytes().split(b"\0")[:-1] for name in cfg["data"]]
        ports, rate, connections = cfg["ports"], cfg["rate"], cfg["connections"]
        positions = [0] * len(lists)
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        sent = [0]
        start = time.perf_counter() + 0.2
        deadline = start + cfg["seconds"]
        exhausted = [False]

        async def connection(index: int) -> None:
            which = index % len(lists)
            requests = lists[which]
            reader, writer = await asyncio.open_connection("127.0.0.1", ports[which])
            try:
                while True:
                    if positions[which] >= len(requests):
                        exhausted[0] = True
                        return
                    k = positions[which]
                    positions[which] += 1
                    if rate:
                        due = start + sent[0] / rate
                        sent[0] += 1
                        if due >= deadline or time.perf_counter() > deadline + 2.0:
                            return
                        delay = due - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    else:
                        if time.perf_counter() >= deadline:
                            return
                        sent[0] += 1
                        due = time.perf_counter()
                    writer.write(requests[k])
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore
                    await reader.readexactly(length)
                    latencies.append(time.perf_counter() - due)
                    status = head[9:12].decode()
                    statuses[status] = statuses.get(status, 0) + 1
            finally:
                writer.close()

        await asyncio.sleep(max(0.0, start - time.perf_counter() - 0.15))
        await asyncio.gather(*[connection(i) for i in range(connections)])
        return {"latencies": latencies, "statuses": statuses, "elapsed": time.perf_counter() - start,
                "sent": sent[0], "generated": sum(len(x) for x in lists), "exhausted": exhausted[0],
                "late": max(0, int(cfg["seconds"] * rate) - len(latencies)) if rate else 0}

    Path(out_path).write_bytes(orjson.dumps(asyncio.run(run())))


def run_replay_phase(servers: list[LocalServer], tracking_id: str, seconds: float, connections: int,
                     rate: float | None, count: int, workdir: Path) -> dict[str, Any]:
    """One replay_load process over fresh pre-signed requests (eventIds <tag>-...)."""
    tag = f"r{uuid.uuid4().hex[:8]}"
    data = []
    for k, server in enumerate(servers):
        path = workdir / f"{tag}-{k}.req"
        path.write_bytes(presigned_events(server, tracking_id, f"{tag}-{k}", count // len(servers) + connections))
        data.append(str(path))
    cfg = {"ports": [s.port for s in servers], "data": data, "seconds": seconds, "connections": connections,
           "rate": rate}
    out = workdir / f"{tag}.json"
    proc = mp.get_context("spawn").Process(target=replay_load, args=(cfg, str(out)))
    proc.start()
    proc.join()
    result = orjson.loads(out.read_bytes())
    result["tag"] = tag
    return result


def replay_throughput(label: str, servers: list[LocalServer], url: str, group: str, tracking_id: str,
                      args: argparse.Namespace, workdir: Path) -> None:
    """Saturated (closed loop) then paced at --offered events/s: events/s, p50/p99, server CPU per call, lost."""
    run_replay_phase(servers, tracking_id, 2, args.connections, None, 2 * args.rate_cap, workdir)  # warm-up
    phases = [("saturated", None, args.connections), (f"paced at {args.offered:,} events/s offered",
                                                      args.offered / 10, max(args.connections, 32))]
    for name, rate, connections in phases:
        # the server's own background work (change watch, key refresh, job runner) while idle, per second: on a
        # starved machine a phase answers few calls, and that fixed cost would swamp the per-call figure
        idle_before, idle_started = sum(cpu_seconds(s.process.pid) for s in servers if s.process), time.time()
        time.sleep(3.0)
        idle_rate = (sum(cpu_seconds(s.process.pid) for s in servers if s.process) - idle_before) / (
            time.time() - idle_started)
        count = int(args.seconds * (rate or args.rate_cap))
        cpu_before, started = sum(cpu_seconds(s.process.pid) for s in servers if s.process), time.time()
        result = run_replay_phase(servers, tracking_id, args.seconds, connections, rate, count, workdir)
        server_cpu = sum(cpu_seconds(s.process.pid) for s in servers if s.process) - cpu_before
        background = idle_rate * (time.time() - started)
        load = load_average()
        time.sleep(0.5)
        stored = count_stored(url, group, result["tag"])
        ok = sum(n for status, n in result["statuses"].items() if status.startswith("2"))
        bad = sum(result["statuses"].values()) - ok
        acked = 10 * ok
        lat = result["latencies"]
        print(f"[{label}] {name}: {acked / result['elapsed']:,.0f} events/s ({ok / result['elapsed']:,.0f} "
              f"PutEvents/s, {connections} connections, {result['elapsed']:.1f} s); latency p50 "
              f"{percentile(lat, 0.5) * 1000:.1f} ms, p99 {percentile(lat, 0.99) * 1000:.1f} ms; acknowledged "
              f"{acked:,}, stored {stored:,}, lost {max(0, acked - stored):,}; non-2xx {bad}"
              + ("; RAN OUT of pre-signed requests: raise --rate-cap" if result["exhausted"] else "")
              + (f"; {result['late']:,} requests due were never sent (the server fell more than 2 s behind)"
                 if result.get("late") else ""), flush=True)
        calls = max(1, ok)
        work = max(server_cpu - background, 1e-9)
        print(f"[{label}] {name}: server CPU {server_cpu:.2f} s, of which {background:.2f} s the idle server's "
              f"background ({idle_rate * 1000:.0f} ms/s measured just before): {work / calls * 1000:.3f} ms per "
              f"PutEvents ({server_cpu / calls * 1000:.3f} with the background) -> {10 * calls / work:,.0f} events "
              f"per server-CPU-second (load average at the end: {load}; the load generator shares these cores)",
              flush=True)


# --- the wrk generator: distinct pre-signed requests, replayed once each -------------------------------------

# Reads the NUL-separated raw requests named by the script argument; `sent` counts request() calls, so
# sent > #reqs means wrk wrapped around (a resent batch is a duplicate the server acknowledges but skips).
WRK_LUA = r"""
reqs, sent = {}, 0
init = function(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while true do
    local stop = string.find(data, "\0", pos, true)
    if not stop then break end
    reqs[#reqs + 1] = string.sub(data, pos, stop - 1)
    pos = stop + 1
  end
  generated = #reqs
end
request = function()
  sent = sent + 1
  return reqs[(sent - 1) % #reqs + 1]
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("TM_SENT %d TM_GENERATED %d\n", t:get("sent"), t:get("generated")))
  end
end
"""


def presigned_events(server: LocalServer, tracking_id: str, tag: str, count: int, users: int = 20000,
                     items: int = 5000) -> bytes:
    """`count` raw PutEvents requests (10 events each, eventIds <tag>-<n>-<j>), NUL-separated, signed now."""
    host = f"127.0.0.1:{server.port}"
    signer = Signer(server.access_key, server.secret_key, server.region, host)
    rng = random.Random(tag)
    now = datetime.now(UTC)
    out = bytearray()
    for n in range(count):
        user = rng.randrange(users)
        body = orjson.dumps({
            "trackingId": tracking_id, "sessionId": f"s-{user}-{n % 3}", "userId": f"u-{user}",
            "eventList": [{"eventId": f"{tag}-{n}-{j}", "eventType": "click", "itemId": f"i{rng.randrange(items)}",
                           "sentAt": now.timestamp(), "eventValue": 1.0, "properties": '{"device": "ios"}'}
                          for j in range(10)],
        })
        head = "".join(f"{k}: {v}\r\n" for k, v in signer.headers("/events", body, now).items() if k != "Host")
        out += (f"POST /events HTTP/1.1\r\nHost: {host}\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
                + body + b"\0")
    return bytes(out)


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk_phase(servers: list[LocalServer], tracking_id: str, seconds: float, connections: int, rate_cap: int,
                  workdir: Path) -> dict[str, Any]:
    """One wrk per server (its requests are signed for that host), all at once; summed counts, worst p50/p99."""
    tag = f"w{uuid.uuid4().hex[:8]}"
    per_server = int(seconds * rate_cap / len(servers)) + 2 * connections
    script = workdir / "putevents.lua"
    script.write_text(WRK_LUA)
    procs = []
    for k, server in enumerate(servers):
        data = workdir / f"{tag}-{k}.req"
        data.write_bytes(presigned_events(server, tracking_id, f"{tag}-{k}", per_server))
        procs.append(subprocess.Popen(
            ["wrk", "-t1", f"-c{max(1, connections // len(servers))}", f"-d{max(1, round(seconds))}s",
             "--timeout", "30s", "--latency", "-s", str(script), server.url, "--", str(data)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    totals = {"tag": tag, "generated": 0, "sent": 0, "completed": 0, "non_2xx": 0, "socket_errors": "",
              "p50_ms": 0.0, "p99_ms": 0.0, "seconds": 0.0}
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0 or "TM_SENT" not in out:
            raise RuntimeError(f"wrk failed:\n{out}")
        sent, generated = map(int, re.search(r"TM_SENT (\d+) TM_GENERATED (\d+)", out).groups())  # type: ignore
        totals["sent"] += sent
        totals["generated"] += generated
        totals["completed"] += int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", out).group(1))  # type: ignore
        took = re.search(r"requests in ([\d.]+)(ms|s|m)", out).groups()  # type: ignore[union-attr]
        totals["seconds"] = max(totals["seconds"], float(took[0]) * {"ms": 0.001, "s": 1.0, "m": 60.0}[took[1]])
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        totals["non_2xx"] += int(bad.group(1)) if bad else 0
        errors = re.search(r"Socket errors:(.*)", out)
        if errors:
            totals["socket_errors"] += errors.group(1).strip() + " "
        totals["p50_ms"] = max(totals["p50_ms"], _ms(re.search(r"\s50%\s+(\S+)", out).group(1)))  # type: ignore
        totals["p99_ms"] = max(totals["p99_ms"], _ms(re.search(r"\s99%\s+(\S+)", out).group(1)))  # type: ignore
    return totals


def count_stored(db_url: str, group: str, prefix: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT COUNT(*) FROM events WHERE dataset_group_arn = :g AND event_id LIKE :p"),
                              {"g": group, "p": prefix + "-%"}).scalar_one()
    engine.dispose()
    return int(stored)


# --- orchestration --------------------------------------------------------------------------------------------


def fresh_postgres() -> str | None:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        name = f"tm_bench_{uuid.uuid4().hex[:8]}"
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        print(f"PostgreSQL not reachable ({str(exc).splitlines()[0]}); skipping it.")
        return None
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    engine.dispose()


def setup_tracker(server: LocalServer) -> tuple[str, str]:
    client = server.client("personalize")
    tag = uuid.uuid4().hex[:6]
    group = client.create_dataset_group(name=f"bench-{tag}")["datasetGroupArn"]
    wait_active(lambda: client.describe_dataset_group(datasetGroupArn=group)["datasetGroup"])
    schema = client.create_schema(name=f"bench-{tag}", schema=json.dumps(SCHEMA))["schemaArn"]
    dataset = client.create_dataset(name=f"bench-{tag}", schemaArn=schema, datasetGroupArn=group,
                                    datasetType="Interactions")["datasetArn"]
    wait_active(lambda: client.describe_dataset(datasetArn=dataset)["dataset"])
    tracker = client.create_event_tracker(name=f"bench-{tag}", datasetGroupArn=group)
    wait_active(lambda: client.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"])["eventTracker"])
    return group, tracker["trackingId"]


def wait_active(describe: Any, tries: int = 600) -> None:
    for _ in range(tries):
        status = describe()["status"]
        if status == "ACTIVE":
            return
        if "FAILED" in status:
            raise RuntimeError(f"resource is {status}")
        time.sleep(0.1)
    raise RuntimeError("resource did not become ACTIVE")


def stored_batches(db_url: str, group: str) -> dict[str, int]:
    """batch id -> number of its events in the durable table."""
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for (event_id,) in conn.execute(sa.text("SELECT event_id FROM events WHERE dataset_group_arn = :g"),
                                        {"g": group}):
            batch = event_id.rsplit("-", 1)[0]
            counts[batch] = counts.get(batch, 0) + 1
    engine.dispose()
    return counts


def run_load(servers: list[LocalServer], tracking_id: str, seconds: float, connections: int, workdir: Path,
             kill_after: float | None = None) -> dict[str, Any]:
    first = servers[0]
    cfg = {"ports": [s.port for s in servers], "access_key": first.access_key, "secret_key": first.secret_key,
           "region": first.region, "tracking_id": tracking_id, "seconds": seconds, "connections": connections,
           "stop_on_error": kill_after is not None}
    out = workdir / f"load-{uuid.uuid4().hex[:6]}.json"
    proc = mp.get_context("spawn").Process(target=generate_load, args=(cfg, str(out)))
    proc.start()
    if kill_after is not None:
        time.sleep(kill_after)
        for server in servers:
            server.kill()
    proc.join()
    return orjson.loads(out.read_bytes())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) from /proc."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_backend(name: str, db_url: str | None, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tm-bench-events-") as tmp:
        workdir = Path(tmp)
        extra = ["--db-url", db_url] if db_url else []
        # Replicas: separate server processes on one data directory and database (what a load balancer
        # in front of N API replicas does); the first one also runs the job workers.
        servers = [LocalServer(workdir / "server", extra_args=extra + ([] if i == 0 else ["--job-threads", "0"]))
                   for i in range(args.replicas)]
        servers[0].start()
        url = db_url or f"sqlite:///{workdir / 'server' / 'tastemaker.db'}"
        label = f"{name}, {args.replicas} API process{'es' if args.replicas > 1 else ''}"
        try:
            group, tracking_id = setup_tracker(servers[0])
            for server in servers[1:]:
                server.start()
            if shutil.which("wrk") and not args.replay:
                wrk_throughput(label, servers, url, group, tracking_id, args, workdir)
            else:
                print("throughput from the asyncio replay of pre-signed requests (it shares the cores)", flush=True)
                replay_throughput(label, servers, url, group, tracking_id, args, workdir)
            if not args.no_crash:
                crash_run(label, servers, url, group, tracking_id, args, workdir)
        finally:
            for server in servers:
                server.stop()


def wrk_throughput(label: str, servers: list[LocalServer], url: str, group: str, tracking_id: str,
                   args: argparse.Namespace, workdir: Path) -> None:
    run_wrk_phase(servers, tracking_id, 2, args.connections, args.rate_cap, workdir)  # warm-up (not counted)
    cpu_before = sum(cpu_seconds(s.process.pid) for s in servers if s.process)
    result = run_wrk_phase(servers, tracking_id, args.seconds, args.connections, args.rate_cap, workdir)
    server_cpu = sum(cpu_seconds(s.process.pid) for s in servers if s.process) - cpu_before
    load = load_average()
    time.sleep(0.5)  # requests still in flight when wrk stopped finish (they are stored, not counted as acked)
    stored = count_stored(url, group, result["tag"])
    ok = result["completed"] - result["non_2xx"]
    wrapped = result["sent"] > result["generated"]
    if wrapped:  # resent requests are duplicates: count each distinct batch at most once
        ok = min(ok, result["generated"])
    acked = 10 * ok
    lost = max(0, acked - stored)
    print(f"[{label}] wrk: sustained {acked / result['seconds']:,.0f} events/s ({ok / result['seconds']:,.0f} "
          f"PutEvents/s, {args.connections} connections, {result['seconds']:.1f} s); latency p50 "
          f"{result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms; acknowledged {acked:,}, stored {stored:,}, "
          f"lost {lost:,} (stored beyond acknowledged, in flight at the end: {max(0, stored - acked):,}); "
          f"non-2xx {result['non_2xx']}; socket errors {result['socket_errors'].strip() or 'none'}", flush=True)
    print(f"[{label}] requests sent {result['sent']:,} of {result['generated']:,} distinct pre-signed"
          + (" -- WRAPPED AROUND: duplicates were sent, acknowledged capped at the distinct count; raise "
             "--rate-cap" if wrapped else " (no wrap-around)"), flush=True)
    calls = max(1, ok)
    print(f"[{label}] server CPU {server_cpu:.1f} s = {server_cpu / calls * 1000:.2f} ms per PutEvents "
          f"-> {10 * calls / max(server_cpu, 1e-9):,.0f} events per server-CPU-second "
          f"(load average at the end of the run: {load}; other processes share these cores)", flush=True)


def crash_run(label: str, servers: list[LocalServer], url: str, group: str, tracking_id: str,
              args: argparse.Namespace, workdir: Path) -> None:
    before = stored_batches(url, group)
    result = run_load(servers, tracking_id, args.seconds, args.connections, workdir, kill_after=args.seconds / 2)
    servers[0].start()
    after = stored_batches(url, group)
    new = {b: n for b, n in after.items() if b not in before}
    acked = set(result["acked"])
    lost = [b for b in acked if after.get(b, 0) != 10]
    partial = [b for b, n in new.items() if n != 10]
    unacked_stored = len(set(new) - acked)
    print(f"[{label} crash] kill -9 after {args.seconds / 2:.1f} s of load, restarted: acknowledged "
          f"{10 * len(acked):,} events, stored {10 * len(acked) - 10 * len(lost):,} of them, lost {10 * len(lost)}; "
          f"partial batches {len(partial)}; batches stored but not acknowledged (in flight at the kill) "
          f"{unacked_stored}", flush=True)


# --- visibility: PutEvents acknowledged -> reflected by GetRecommendations and by the real-time state --------


def trained_campaign(server: LocalServer, import_root: Path) -> dict[str, str]:
    """A group with a small imported dataset, an event tracker, a trained version, a campaign and a filter."""
    from tests.e2e.datagen import INTERACTIONS_SCHEMA, ITEMS_SCHEMA, write_dataset

    client = server.client("personalize")
    tag = uuid.uuid4().hex[:6]
    data = write_dataset(import_root / tag)
    group = client.create_dataset_group(name=f"vis-{tag}")["datasetGroupArn"]
    wait_active(lambda: client.describe_dataset_group(datasetGroupArn=group)["datasetGroup"])
    for kind, schema, path in (("Interactions", INTERACTIONS_SCHEMA, data["interactions"]),
                               ("Items", ITEMS_SCHEMA, data["items"])):
        schema_arn = client.create_schema(name=f"vis-{kind}-{tag}", schema=json.dumps(schema))["schemaArn"]
        dataset = client.create_dataset(name=f"vis-{kind}-{tag}", schemaArn=schema_arn, datasetGroupArn=group,
                                        datasetType=kind)["datasetArn"]
        wait_active(lambda dataset=dataset: client.describe_dataset(datasetArn=dataset)["dataset"])
        job = client.create_dataset_import_job(jobName=f"vis-{kind}-{tag}", datasetArn=dataset,
                                               dataSource={"dataLocation": str(path)},
                                               roleArn="arn:aws:iam::000000000000:role/Personalize")
        wait_active(lambda job=job: client.describe_dataset_import_job(
            datasetImportJobArn=job["datasetImportJobArn"])["datasetImportJob"])
    tracker = client.create_event_tracker(name=f"vis-{tag}", datasetGroupArn=group)
    wait_active(lambda: client.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"])["eventTracker"])
    solution = client.create_solution(name=f"vis-{tag}", datasetGroupArn=group,
                                      recipeArn="arn:aws:personalize:::recipe/aws-user-personalization")
    wait_active(lambda: client.describe_solution(solutionArn=solution["solutionArn"])["solution"])
    version = client.create_solution_version(solutionArn=solution["solutionArn"])["solutionVersionArn"]
    wait_active(lambda: client.describe_solution_version(solutionVersionArn=version)["solutionVersion"], 3000)
    campaign = client.create_campaign(name=f"vis-{tag}", solutionVersionArn=version)["campaignArn"]
    wait_active(lambda: client.describe_campaign(campaignArn=campaign)["campaign"], 3000)
    filter_arn = client.create_filter(name=f"vis-{tag}", datasetGroupArn=group, filterExpression=(
        'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")'))["filterArn"]
    wait_active(lambda: client.describe_filter(filterArn=filter_arn)["filter"])
    return {"group": group, "tracking_id": tracker["trackingId"], "campaign": campaign, "filter": filter_arn}


def bench_visibility(name: str, redis_url: str | None, probes: int) -> None:
    """Per probe: a new user, the top item recommended to them, PutEvents(click on it); then poll both reads."""
    import sqlalchemy as sa

    from tastemaker.realtime.state import EmbeddedState

    with tempfile.TemporaryDirectory(prefix="tm-bench-visibility-") as tmp:
        workdir = Path(tmp)
        server = LocalServer(workdir / "server", import_roots=[workdir / "imports"],
                             extra_args=["--redis-url", redis_url] if redis_url else [])
        server.start()
        engine = sa.create_engine(f"sqlite:///{workdir / 'server' / 'tastemaker.db'}")
        try:
            setup = trained_campaign(server, workdir / "imports")
            state: Any = EmbeddedState(engine)
            if redis_url:
                from tastemaker.realtime.redis_state import RedisState

                state = RedisState.from_url(redis_url)  # reads Redis itself, no fallback
            runtime, events = server.client("personalize-runtime"), server.client("personalize-events")

            def recommended(user: str) -> list[str]:
                return [r["itemId"] for r in runtime.get_recommendations(
                    campaignArn=setup["campaign"], userId=user, numResults=10, filterArn=setup["filter"])["itemList"]]

            to_recs: list[float] = []
            to_state: list[float] = []
            recs_latency: list[float] = []
            first_try = [0, 0]  # probes where the first read already saw it: state, recommendations
            for n in range(probes):
                user = f"vis-{n}-{uuid.uuid4().hex[:6]}"
                item = recommended(user)[0]
                events.put_events(trackingId=setup["tracking_id"], userId=user, sessionId=f"s-{user}",
                                  eventList=[{"eventType": "click", "itemId": item, "sentAt": time.time()}])
                acked = time.perf_counter()
                seen_state = seen_recs = None
                attempt = 0
                while seen_recs is None or seen_state is None:
                    attempt += 1
                    if seen_state is None and any(e.item_id == item for e in state.recent_events(setup["group"], user)):
                        seen_state = time.perf_counter() - acked
                        first_try[0] += attempt == 1
                    if seen_recs is None:
                        started = time.perf_counter()
                        shown = recommended(user)
                        recs_latency.append(time.perf_counter() - started)
                        if item not in shown:
                            seen_recs = time.perf_counter() - acked
                            first_try[1] += attempt == 1
                    if time.perf_counter() - acked > 30:
                        raise RuntimeError(f"probe {n}: the event was not visible after 30 s")
                to_recs.append(seen_recs)
                to_state.append(seen_state)
            ms = lambda values, q: percentile(values, q) * 1000
            print(f"[visibility, {name}] PutEvents 200 -> recent_events sees it: p50 {ms(to_state, 0.5):.2f} ms, "
                  f"p99 {ms(to_state, 0.99):.2f} ms (first read saw it in {first_try[0]}/{probes}); "
                  f"-> GetRecommendations reflects it (EXCLUDE filter hides the item): p50 {ms(to_recs, 0.5):.1f} ms, "
                  f"p99 {ms(to_recs, 0.99):.1f} ms (first call did in {first_try[1]}/{probes}); {probes} probes; "
                  f"one GetRecommendations takes p50 {ms(recs_latency, 0.5):.1f} ms (the resolution); "
                  f"load average {load_average()}", flush=True)
            if redis_url:
                state.clear(setup["group"])
        finally:
            engine.dispose()
            server.stop()


def redis_reachable() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        print(f"Redis not reachable ({exc}); skipping its visibility run.")
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--backends", default="sqlite,postgresql", help="ingestion runs ('none' for none)")
    parser.add_argument("--rate-cap", type=int, default=5000,
                        help="PutEvents/s the pre-signed set must cover (requests generated = seconds x this)")
    parser.add_argument("--replicas", type=int, default=1, help="API server processes sharing the database")
    parser.add_argument("--visibility", default="embedded,redis", help="real-time states to probe ('none')")
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--offered", type=int, default=10_000, help="events/s of the paced phase (replay only)")
    parser.add_argument("--replay", action="store_true", help="the asyncio replay even when wrk is installed")
    parser.add_argument("--no-crash", action="store_true", help="skip the kill -9 run")
    args = parser.parse_args()
    print(f"PutEvents ingestion, 10 events per call, load generator in a separate process; {mp.cpu_count()} cores",
          flush=True)
    for backend in args.backends.split(","):
        if backend == "sqlite":
            bench_backend("sqlite", None, args)
        elif backend == "postgresql":
            url = fresh_postgres()
            if url:
                try:
                    bench_backend("postgresql", url, args)
                finally:
                    drop_postgres(url)
    for kind in args.visibility.split(","):
        if kind == "embedded":
            bench_visibility("embedded state (SQLite)", None, args.probes)
        elif kind == "redis" and redis_reachable():
            bench_visibility("Redis state", REDIS_URL, args.probes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
