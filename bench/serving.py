"""Serving benchmark: a user-personalization campaign over a generated catalogue under SigV4-signed load.

Generates USERS x ITEMS interaction data (a few events per user, taste clusters, power-law popularity),
imports and trains it through the normal API on a `tastemaker serve --workers N` server, deploys a campaign,
then runs a load generator in a separate process (wrk with a Lua script of pre-signed requests when wrk is
installed, else an asyncio generator) against: the trivial /ping endpoint (the framework's ceiling),
GetRecommendations (numResults 25), GetRecommendations with an Items filter, and GetRecommendations paced at
the target rate (latency at that load rather than at saturation). Prints throughput, p50, p99, the server's
CPU time per request and memory (RSS and PSS of all its processes), our share of the ceiling, the machine's
own jitter (a fixed computation's p99) and the in-process cost of two steps every request must take (SigV4
verification, one index query), next to the CPU budget that half of /ping's throughput would leave.

    .venv/bin/python bench/serving.py                      # 1,000,000 users x 100,000 items
    .venv/bin/python bench/serving.py --users 100000 --items 20000 --seconds 8   # quicker
    .venv/bin/python bench/serving.py --reuse /tmp/tm-serving-bench   # keep the server state between runs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tastemaker.cli.local_server import LocalServer
from tastemaker.serving.approx import ANN_MIN_ITEMS

GENRES = 100
TARGET_RPS, TARGET_P99_MS, TARGET_SHARE = 1500.0, 25.0, 0.5
PHASES = ("ping (framework ceiling)", "GetRecommendations", "GetRecommendations + filter",
          f"GetRecommendations, {TARGET_RPS:,.0f} req/s offered")


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per figure, the median over the runs (errors: the total)."""
    out = {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
    out["non_2xx"] = float(sum(r["non_2xx"] for r in runs))
    return out


# --- data ----------------------------------------------------------------------------------------------

def generate(folder: Path, users: int, items: int, per_user: float, seed: int = 0) -> dict[str, Path]:
    """interactions.csv / items.csv: each user has a genre; 70% of events in it, popularity is power-law."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    paths = {"interactions": folder / "interactions.csv", "items": folder / "items.csv"}
    if all(p.exists() for p in paths.values()):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    counts = 1 + rng.poisson(per_user - 1, users)
    user = np.repeat(np.arange(users), counts)
    n = user.size
    user_genre = rng.integers(0, GENRES, users)
    # power-law item ranks; item id = rank * GENRES + genre, so every genre has popular and rare items
    per_genre = items // GENRES
    rank = np.minimum((rng.pareto(1.2, n) * 3).astype(np.int64), per_genre - 1)
    own = rng.random(n) < 0.7
    genre = np.where(own, user_genre[user], rng.integers(0, GENRES, n))
    item = rank * GENRES + genre
    base = 1_700_000_000
    stamp = base + np.arange(n, dtype=np.int64) // 50
    table = pa.table({
        "USER_ID": pc.binary_join_element_wise("u", pa.array(user).cast(pa.string()), ""),
        "ITEM_ID": pc.binary_join_element_wise("i", pa.array(item).cast(pa.string()), ""),
        "TIMESTAMP": pa.array(stamp),
        "EVENT_TYPE": pa.array(np.where(rng.random(n) < 0.8, "click", "watch")),
    })
    pcsv.write_csv(table, paths["interactions"])
    ids = np.arange(items)
    pcsv.write_csv(pa.table({
        "ITEM_ID": pc.binary_join_element_wise("i", pa.array(ids).cast(pa.string()), ""),
        "GENRES": pc.binary_join_element_wise("g", pa.array(ids % GENRES).cast(pa.string()), ""),
        "CREATION_TIMESTAMP": pa.array(base - (ids // GENRES) * 60),
    }), paths["items"])
    return paths


INTERACTIONS = {"type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
                "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                           {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"}],
                "version": "1.0"}
ITEMS = {"type": "record", "name": "Items", "namespace": "com.amazonaws.personalize.schema",
         "fields": [{"name": "ITEM_ID", "type": "string"},
                    {"name": "GENRES", "type": ["null", "string"], "categorical": True},
                    {"name": "CREATION_TIMESTAMP", "type": "long"}], "version": "1.0"}


def wait(describe: Any, key: str, timeout: float = 3600) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = describe()[key]
        if found["status"] in ("ACTIVE", "CREATE FAILED"):
            if found["status"] != "ACTIVE":
                raise SystemExit(f"{key} failed: {found.get('failureReason')}")
            return found
        time.sleep(1)
    raise SystemExit(f"{key} not ACTIVE after {timeout}s")


def setup(server: LocalServer, paths: dict[str, Path], factors: int) -> dict[str, str]:
    """Group, datasets, imports, a trained aws-user-personalization version, a campaign, a genre filter."""
    p = server.client("personalize")
    tag = uuid.uuid4().hex[:6]
    group = p.create_dataset_group(name=f"bench-{tag}")["datasetGroupArn"]
    wait(lambda: p.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    timings = {}
    for kind, schema in (("Interactions", INTERACTIONS), ("Items", ITEMS)):
        schema_arn = p.create_schema(name=f"bench-{kind.lower()}-{tag}", schema=json.dumps(schema))["schemaArn"]
        ds = p.create_dataset(name=f"bench-{kind.lower()}-{tag}", schemaArn=schema_arn, datasetGroupArn=group,
                              datasetType=kind)["datasetArn"]
        wait(lambda ds=ds: p.describe_dataset(datasetArn=ds), "dataset")
        started = time.time()
        job = p.create_dataset_import_job(jobName=f"bench-{kind.lower()}-{tag}", datasetArn=ds,
                                          dataSource={"dataLocation": str(paths[kind.lower()])},
                                          roleArn="arn:aws:iam::000000000000:role/P")["datasetImportJobArn"]
        wait(lambda job=job: p.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob")
        timings[f"import {kind}"] = time.time() - started
    solution = p.create_solution(name=f"bench-up-{tag}", datasetGroupArn=group, performAutoTraining=False,
                                 recipeArn="arn:aws:personalize:::recipe/aws-user-personalization",
                                 solutionConfig={"algorithmHyperParameters": {"hidden_dimension": str(factors)}})
    wait(lambda: p.describe_solution(solutionArn=solution["solutionArn"]), "solution")
    started = time.time()
    version = p.create_solution_version(solutionArn=solution["solutionArn"])["solutionVersionArn"]
    wait(lambda: p.describe_solution_version(solutionVersionArn=version), "solutionVersion")
    timings["train (incl. evaluation)"] = time.time() - started
    campaign = p.create_campaign(name=f"bench-{tag}", solutionVersionArn=version)["campaignArn"]
    wait(lambda: p.describe_campaign(campaignArn=campaign), "campaign")
    filter_arn = p.create_filter(name=f"bench-genre-{tag}", datasetGroupArn=group,
                                 filterExpression="EXCLUDE ItemID WHERE Items.GENRES IN ($G)")["filterArn"]
    wait(lambda: p.describe_filter(filterArn=filter_arn), "filter")
    for what, seconds in timings.items():
        print(f"  {what}: {seconds:.1f} s", flush=True)
    return {"campaign": campaign, "filter": filter_arn, "version": version}


# --- load ----------------------------------------------------------------------------------------------

def signed_requests(server: LocalServer, campaign: str, users: int, count: int, filter_arn: str | None,
                    seed: int = 1) -> list[bytes]:
    """Raw HTTP/1.1 requests, each SigV4-signed now (valid for 5 minutes), for random known users."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = Credentials(server.access_key, server.secret_key)
    rng = np.random.default_rng(seed)
    host = f"127.0.0.1:{server.port}"
    out = []
    for user in rng.integers(0, users, count).tolist():
        body: dict[str, Any] = {"campaignArn": campaign, "userId": f"u{user}", "numResults": 25}
        if filter_arn:
            body.update(filterArn=filter_arn, filterValues={"G": f'"g{user % GENRES}"'})
        data = json.dumps(body).encode()
        request = AWSRequest(method="POST", url=f"http://{host}/recommendations", data=data,
                             headers={"Content-Type": "application/json"})
        SigV4Auth(creds, "personalize", server.region).add_auth(request)
        head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
        out.append(f"POST /recommendations HTTP/1.1\r\nHost: {host}\r\n{head}Content-Length: {len(data)}\r\n\r\n"
                   .encode() + data)
    return out


def ping_requests(server: LocalServer) -> list[bytes]:
    return [f"GET /ping HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()]


def _lua_string(raw: bytes) -> str:
    text = raw.decode()
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n") + '"'


def run_wrk(url: str, requests: list[bytes], seconds: float, connections: int, workdir: Path,
            mean_delay_ms: float | None = None) -> dict[str, float]:
    """wrk in its own process. With `mean_delay_ms`, each connection waits a random delay (uniform, that
    mean) before each request: a paced load instead of as many requests as the server can answer."""
    script = workdir / f"load-{uuid.uuid4().hex[:6]}.lua"
    pacing = (f"function delay()\n  return math.random() * {2.0 * mean_delay_ms:.4f}\nend\n"
              if mean_delay_ms else "")
    script.write_text("local reqs = {\n" + ",\n".join(_lua_string(r) for r in requests) + "\n}\n"
                      "local i = 0\n" + pacing + "request = function()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n")
    proc = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script),
                           url], capture_output=True, text=True, check=True)
    return parse_wrk(proc.stdout)


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(output: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "non_2xx": float(bad.group(1)) if bad else 0.0,
            "requests": float(total), "socket_errors": 1.0 if errors else 0.0}


def run_python_load(port: int, requests: list[bytes], seconds: float, connections: int,
                    rate: float | None = None) -> dict[str, float]:
    """Fallback generator in a separate process: asyncio keep-alive connections sending pre-signed requests."""
    code = r'''
import asyncio, json, random, sys, time
port, seconds, conns, rate = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
reqs = [bytes.fromhex(h) for h in json.load(sys.stdin)]
lat, bad = [], 0
async def one(k):
    global bad
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i, end = k, time.perf_counter() + seconds
    while time.perf_counter() < end:
        if rate:
            await asyncio.sleep(random.random() * 2 * conns / rate)
        t = time.perf_counter(); writer.write(reqs[i % len(reqs)]); i += conns
        head = await reader.readuntil(b"\r\n\r\n")
        size = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
        await reader.readexactly(size)
        lat.append(time.perf_counter() - t); bad += not head.startswith(b"HTTP/1.1 200")
    writer.close()
async def main():
    t = time.perf_counter(); await asyncio.gather(*(one(k) for k in range(conns))); return time.perf_counter() - t
took = asyncio.run(main()); lat.sort()
print(json.dumps({"rps": len(lat) / took, "p50_ms": lat[len(lat) // 2] * 1e3,
                  "p99_ms": lat[int(len(lat) * 0.99)] * 1e3, "non_2xx": bad, "requests": len(lat)}))
'''
    proc = subprocess.run([sys.executable, "-c", code, str(port), str(seconds), str(connections), str(rate or 0)],
                          input=json.dumps([r.hex() for r in requests]), capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def load(server: LocalServer, requests: list[bytes], seconds: float, connections: int,
         workdir: Path, rate: float | None = None) -> dict[str, float]:
    """One load phase; adds the server's CPU time per answered request (all its processes, from /proc)."""
    pids = process_tree(server.process.pid)  # type: ignore[union-attr]
    if rate and shutil.which("wrk"):
        # wrk's delay comes on top of each request's latency: a short run measures that latency, the
        # measured run waits that much less so that about `rate` requests/s are offered
        cycle_ms = 1000.0 * connections / rate
        probe = run_wrk(server.url, requests, 3, connections, workdir, cycle_ms)
        latency_ms = max(1000.0 * connections / max(probe["rps"], 1.0) - cycle_ms, 0.0)
        before = cpu_seconds(pids)
        result = run_wrk(server.url, requests, seconds, connections, workdir, max(cycle_ms - latency_ms, 0.1))
    elif shutil.which("wrk"):
        before = cpu_seconds(pids)
        result = run_wrk(server.url, requests, seconds, connections, workdir)
    else:
        before = cpu_seconds(pids)
        result = run_python_load(server.port, requests, seconds, connections, rate)
    result["cpu_ms"] = (cpu_seconds(pids) - before) * 1000 / max(result["requests"], 1.0)
    return result


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU seconds these processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


# --- memory --------------------------------------------------------------------------------------------

def process_tree(pid: int) -> list[int]:
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def memory_mib(pid: int) -> dict[str, float]:
    """RSS (shared pages counted in every process) and PSS (shared pages split) over the server's processes."""
    rss = pss = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return {"rss_mib": rss / 1024, "pss_mib": pss / 1024, "processes": float(len(process_tree(pid)))}


def worker_memory(pid: int) -> list[dict[str, float]]:
    """RSS and PSS (MiB) of each API worker process of the server (its children that serve requests)."""
    out = []
    for p in process_tree(pid)[1:]:
        try:
            if b"resource_tracker" in Path(f"/proc/{p}/cmdline").read_bytes():
                continue
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()
                          if ":" in line and not line.startswith("5"))
        except OSError:
            continue
        out.append({"pid": float(p), "rss_mib": int(fields["Rss"].split()[0]) / 1024,
                    "pss_mib": int(fields["Pss"].split()[0]) / 1024})
    return out


def second_campaign(server: LocalServer, state: dict[str, str], users: int, connections: int,
                    workdir: Path) -> dict[str, float]:
    """Issue #22 items 4 and 5: a second campaign on the benchmark's solution version. Times its deploy (create
    -> ACTIVE -> first answer) against reading the version's artifacts from the blob store, and the workers'
    memory before and after it serves on every worker (the model is mapped, so it should not be loaded twice)."""
    from tastemaker.store.blobs import open_blob_store

    p = server.client("personalize")
    runtime = server.client("personalize-runtime")
    version = p.describe_solution_version(solutionVersionArn=state["version"])["solutionVersion"]
    blobs = open_blob_store(f"file://{server.data_dir / 'blobs'}")
    prefix = next(str(k) for k in blobs.list("") if str(k).endswith("model.json")).rsplit("/", 1)[0] + "/"
    started = time.perf_counter()
    size = sum(len(blobs.get_bytes(key)) for key in blobs.list(prefix))
    read_s = time.perf_counter() - started
    before = worker_memory(server.process.pid)  # type: ignore[union-attr]
    started = time.perf_counter()
    arn = p.create_campaign(name=f"bench-second-{uuid.uuid4().hex[:6]}",
                            solutionVersionArn=version["solutionVersionArn"])["campaignArn"]
    while p.describe_campaign(campaignArn=arn)["campaign"]["status"] != "ACTIVE":
        time.sleep(0.05)
    active_s = time.perf_counter() - started
    runtime.get_recommendations(campaignArn=arn, userId="u1")
    served_s = time.perf_counter() - started
    load(server, signed_requests(server, arn, users, 500, None), 2, connections, workdir)  # every worker
    after = worker_memory(server.process.pid)  # type: ignore[union-attr]
    p.delete_campaign(campaignArn=arn)
    return {"artifact_mib": size / 2**20, "read_s": read_s, "active_s": active_s, "served_s": served_s,
            "pss_before": sum(w["pss_mib"] for w in before), "pss_after": sum(w["pss_mib"] for w in after),
            "rss_before": sum(w["rss_mib"] for w in before), "rss_after": sum(w["rss_mib"] for w in after)}


# --- deploy and switch (issue #22 item 4) -----------------------------------------------------------------


def second_version(server: LocalServer, state: dict[str, str], state_file: Path) -> str:
    """A second solution version of the benchmark's solution (trained once, kept in the state file): what an
    UpdateCampaign switches to."""
    if "version2" not in state:
        p = server.client("personalize")
        solution = p.describe_solution_version(solutionVersionArn=state["version"])["solutionVersion"]["solutionArn"]
        started = time.time()
        version = p.create_solution_version(solutionArn=solution)["solutionVersionArn"]
        wait(lambda: p.describe_solution_version(solutionVersionArn=version), "solutionVersion")
        print(f"  second solution version trained in {time.time() - started:.1f} s", flush=True)
        state["version2"] = version
        state_file.write_text(json.dumps(state))
    return state["version2"]


def artifact_read_seconds(server: LocalServer, version_arn: str, reads: int = 3) -> tuple[float, float]:
    """(seconds, MiB) to read every artifact of a version from the blob store (the deploy target's yardstick): the
    median of `reads` reads of the same files, one after another (a single read right after a start varied 2x
    with what else ran in that moment)."""
    import sqlalchemy as sa

    from tastemaker.store import resources
    from tastemaker.store.blobs import open_blob_store
    from tastemaker.store.records import SolutionVersion

    engine = sa.create_engine(f"sqlite:///{server.data_dir / 'tastemaker.db'}")
    with engine.connect() as conn:
        prefix = SolutionVersion.of(resources.get(conn, version_arn, "solution_version")).model_prefix
    engine.dispose()
    bucket = open_blob_store(f"file://{server.data_dir / 'blobs'}")
    took, size = [], 0
    for _ in range(reads):
        started = time.perf_counter()
        size = sum(len(bucket.get_bytes(key)) for key in bucket.list(prefix))
        took.append(time.perf_counter() - started)
    return float(np.median(took)), size / 2**20


def settle(server: LocalServer, quiet_cpu_s: float = 0.02, window_s: float = 0.5, timeout_s: float = 30.0) -> float:
    """Wait until the server's processes are done with their start-up work (importing recipe modules, loading
    numba's cache: background threads at start) -- less than `quiet_cpu_s` of CPU in `window_s` -- so that the
    first deploy is timed against a started server, not against its start-up. Returns the seconds waited."""
    started = time.perf_counter()
    pids = process_tree(server.process.pid)  # type: ignore[union-attr]
    used = cpu_seconds(pids)
    while time.perf_counter() - started < timeout_s:
        time.sleep(window_s)
        now = cpu_seconds(pids)
        if now - used < quiet_cpu_s:
            break
        used = now
    return time.perf_counter() - started


def time_deploy(server: LocalServer, version_arn: str) -> dict[str, float]:
    """CreateCampaign -> ACTIVE -> first GetRecommendations; then deleted. ACTIVE is when the server wrote the
    ACTIVE status (the campaign's lastUpdatedDateTime, same host and clock, millisecond resolution), counted from
    just before the CreateCampaign call; `polled_s` is when DescribeCampaign (every 10 ms) first showed it, which
    adds up to a sleep and a DescribeCampaign round trip to the deploy (about 10 ms of a 40 ms deploy)."""
    p = server.client("personalize")
    runtime = server.client("personalize-runtime")
    wall = time.time()
    started = time.perf_counter()
    arn = p.create_campaign(name=f"bench-deploy-{uuid.uuid4().hex[:6]}", solutionVersionArn=version_arn)["campaignArn"]
    while (campaign := p.describe_campaign(campaignArn=arn)["campaign"])["status"] != "ACTIVE":
        time.sleep(0.01)
    polled_s = time.perf_counter() - started
    active_s = campaign["lastUpdatedDateTime"].timestamp() - wall
    runtime.get_recommendations(campaignArn=arn, userId="u1")
    served_s = time.perf_counter() - started
    p.delete_campaign(campaignArn=arn)
    return {"active_s": active_s, "polled_s": polled_s, "served_s": served_s}


PACED_LOAD = r"""
import asyncio, json, sys, time
port, seconds, conns, rate = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
reqs = [bytes.fromhex(h) for h in json.loads(open(sys.argv[5]).read())]
out, slot = [], [0]
start = time.perf_counter() + 0.2
wall0 = time.time() + 0.2
async def one():
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while True:
        k = slot[0]; slot[0] += 1
        due = start + k / rate
        if due >= start + seconds:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        try:
            writer.write(reqs[k % len(reqs)])
            head = await reader.readuntil(b"\r\n\r\n")
            size = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
            await reader.readexactly(size)
            ok = head.startswith(b"HTTP/1.1 200")
        except (OSError, asyncio.IncompleteReadError):  # counted as an error; a new connection for the next
            ok = False
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        out.append((wall0 + (due - start), time.perf_counter() - due, ok))
    writer.close()
async def main():
    await asyncio.gather(*(one() for _ in range(conns)))
asyncio.run(main())
print(json.dumps(out))
"""


def update_under_load(server: LocalServer, campaign: str, versions: tuple[str, str], users: int, rate: float,
                      seconds: float, workdir: Path) -> dict[str, float]:
    """GetRecommendations paced at `rate` req/s (latency counted from when each request was due) while an
    UpdateCampaign switches the campaign to the other version after a third of the run: p99 of the requests
    due before the update (steady) against those due from the call until 3 s after the switch is ACTIVE."""
    p = server.client("personalize")
    current = p.describe_campaign(campaignArn=campaign)["campaign"]["solutionVersionArn"]
    target = versions[1] if current == versions[0] else versions[0]
    requests = workdir / f"paced-{uuid.uuid4().hex[:6]}.json"
    requests.write_text(json.dumps([r.hex() for r in signed_requests(server, campaign, users, 4000, None, seed=5)]))
    proc = subprocess.Popen([sys.executable, "-c", PACED_LOAD, str(server.port), str(seconds), "32", str(rate),
                             str(requests)], stdout=subprocess.PIPE, text=True)
    time.sleep(seconds / 3)
    called = time.time()
    p.update_campaign(campaignArn=campaign, solutionVersionArn=target)
    # every 0.1 s: the window ends 3 s after the switch, and DescribeCampaign every 10 ms would add ~100 req/s on
    # the same workers inside the measured window only (none in the steady one)
    while p.describe_campaign(campaignArn=campaign)["campaign"].get("latestCampaignUpdate", {}).get("status") \
            != "ACTIVE":
        time.sleep(0.1)
    switched = time.time()
    out, _ = proc.communicate()
    samples = json.loads(out)
    steady = [lat for due, lat, _ok in samples if due < called]
    during = [lat for due, lat, _ok in samples if called <= due < switched + 3.0]
    return {"steady_p99_ms": 1000 * float(np.percentile(steady, 99)),
            "during_p99_ms": 1000 * float(np.percentile(during, 99)),
            "steady_p50_ms": 1000 * float(np.percentile(steady, 50)),
            "during_p50_ms": 1000 * float(np.percentile(during, 50)),
            "during_max_ms": 1000 * float(np.max(during)), "during_requests": float(len(during)),
            "switch_s": switched - called, "errors": float(sum(1 for _d, _l, ok in samples if not ok)),
            "requests": float(len(samples))}


def deploy_report(server: LocalServer, state: dict[str, str], state_file: Path, users: int, rounds: int) -> None:
    """Issue #22 item 4, on a freshly started server: the first CreateCampaign after the start (the jobs
    process loads the model, compiles or loads its kernels and the saved index), then another one on the same
    version, against reading the version's artifacts; then UpdateCampaign under a paced load."""
    version2 = second_version(server, state, state_file)
    waited = settle(server)
    read_s, mib = artifact_read_seconds(server, state["version"])
    first = time_deploy(server, state["version"])
    again = [time_deploy(server, state["version"]) for _ in range(rounds)]
    again_active = float(np.median([r["active_s"] for r in again]))
    print(f"deploy: reading the version's {mib:.0f} MiB of artifacts from the blob store {read_s:.3f} s (median of "
          f"3); first campaign after the server start (settled {waited:.1f} s) ACTIVE in {first['active_s']:.3f} s "
          f"({first['active_s'] / read_s:.1f}x the read; DescribeCampaign showed it at {first['polled_s']:.3f} s), "
          f"first answer at {first['served_s']:.3f} s; another campaign on the same version ACTIVE in "
          f"{again_active:.3f} s (median of {rounds}; {again_active / read_s:.1f}x the read; target <= 2x); load "
          f"average {' / '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="tm-deploy-"))
    # every worker serves the campaign before the steady window starts (boto3 alone may reach one worker)
    load(server, signed_requests(server, state["campaign"], users, 500, None, seed=4), 3, 16, workdir)
    for rate, what in ((100.0, "to a version the workers have not served since their start"),
                       (300.0, "back to the version they served before")):
        update = update_under_load(server, state["campaign"], (state["version"], version2), users, rate, 15.0,
                                   workdir)
        print(f"UpdateCampaign {what}, under {rate:.0f} req/s of GetRecommendations (paced): steady p50/p99 "
              f"{update['steady_p50_ms']:.1f} / {update['steady_p99_ms']:.1f} ms, from the call until 3 s after "
              f"the switch {update['during_p50_ms']:.1f} / {update['during_p99_ms']:.1f} ms "
              f"({update['during_p99_ms'] / update['steady_p99_ms']:.2f}x; target <= 2x; slowest "
              f"{update['during_max_ms']:.0f} ms of {int(update['during_requests'])}); switched in "
              f"{update['switch_s']:.2f} s; {int(update['errors'])} errors of {int(update['requests'])}; load "
              f"average {' / '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)


def machine_jitter(rounds: int = 1000) -> dict[str, float]:
    """This machine's own tail: a fixed small pure-Python computation timed after 5 ms sleeps (as a server
    between requests), with nothing of ours involved. Its p99 / p50 shows how much of a p99 is the machine."""
    def work() -> int:
        total = 0
        for k in range(3000):
            total += k * k
        return total

    took = []
    for _ in range(rounds):
        time.sleep(0.005)
        started = time.perf_counter()
        work()
        took.append(time.perf_counter() - started)
    took.sort()
    return {"p50_ms": took[len(took) // 2] * 1e3, "p99_ms": took[int(len(took) * 0.99)] * 1e3,
            "max_ms": took[-1] * 1e3}


def mandatory_costs(scorer: Any, model: Any, rows: np.ndarray) -> dict[str, float]:
    """Microseconds of two steps every GetRecommendations on this path must take, timed in this process:
    verifying a SigV4 signature and one index query for a folded-in user vector. CPU time (process_time), like
    the server's figure it is compared with: wall time would count other processes' use of a shared machine."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from tastemaker.api.sigv4 import HeaderLists, verify_sigv4

    body = json.dumps({"campaignArn": "arn:aws:personalize:us-east-1:000000000000:campaign/c", "userId": "u1",
                       "numResults": 25}).encode()
    request = AWSRequest(method="POST", url="http://127.0.0.1:8080/recommendations", data=body,
                         headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("AKIDBENCH", "secret"), "personalize", "us-east-1").add_auth(request)
    raw = [(k.lower().encode(), v.encode() if isinstance(v, str) else v) for k, v in request.headers.items()]
    raw.append((b"host", b"127.0.0.1:8080"))
    rounds = 3000
    started = time.process_time()
    for _ in range(rounds):
        verify_sigv4("POST", "/recommendations", "", HeaderLists.from_asgi(raw), body, lambda _key: "secret")
    sigv4_us = (time.process_time() - started) / rounds * 1e6
    empty = [np.zeros(0, np.int32)] * len(rows)
    vectors = [model.serving_state(np.asarray(h, dtype=np.int64))[0][None, :]
               for h in model.merged_histories(rows, empty)]
    started = time.process_time()
    for vector in vectors:
        scorer.index.query(vector, scorer.n_candidates)
    query_us = (time.process_time() - started) / len(rows) * 1e6
    return {"sigv4_us": sigv4_us, "query_us": query_us}


def ann_check(server_dir: Path, users: int = 300) -> dict[str, float] | None:
    """Recall@25 of the served approximate path (HNSW candidates + exact re-scoring) against exact scoring of the
    whole catalogue, for known users with and without the benchmark's genre filter; and its cost per user."""
    from tastemaker.recipes import load_model
    from tastemaker.serving import approx
    from tastemaker.serving.models import plain_arrays

    model_json = next((server_dir / "blobs").rglob("model.json"), None)
    if model_json is None or not approx.ann_available():
        print("ann: skipped (no model or hnswlib not installed)")
        return None
    model = load_model(model_json.parent)
    plain_arrays(model)
    if not getattr(model, "supports_candidates", False):
        print("ann: skipped (the model has no item factors: EASE engine)")
        return None
    scorer = approx.CandidateScorer(model, server_dir / "cache")
    scorer.build_now()
    rows = np.random.default_rng(2).integers(0, model.n_users, users)
    genre_of_item = np.array([int(str(i)[1:]) % GENRES for i in model.item_ids])
    masks = [genre_of_item != int(str(model.user_ids[u])[1:]) % GENRES for u in rows]
    plain = approx.recall_against_exact(scorer, rows, 25)
    filtered = approx.recall_against_exact(scorer, rows, 25, masks)
    timings = {}
    for name, fn in (("exact", lambda q: model.score_users(np.array([u for u, _h, _c in q]), [h for _u, h, _c in q])),
                     ("candidates", scorer.compute)):
        queries = [(int(u), np.zeros(0, np.int32), None) for u in rows[:256]]
        started = time.perf_counter()
        for k in range(0, len(queries), 16):
            fn(queries[k:k + 16])
        timings[name] = (time.perf_counter() - started) / len(queries) * 1000
    costs = mandatory_costs(scorer, model, rows)
    print(f"mandatory steps, in process: SigV4 verification {costs['sigv4_us']:.0f} us, one index query for a user "
          f"vector {costs['query_us']:.0f} us")
    print(f"approximate path (hnswlib M={approx.INDEX_M}, {scorer.n_candidates} index candidates + transitions + "
          f"head + {approx.SAMPLE_ITEMS} sampled) over {model.n_items:,} items: recall@25 vs exact {plain:.3f} "
          f"(with the genre filter {filtered:.3f}) over {users} users; model scoring {timings['candidates']:.2f} ms "
          f"vs exact {timings['exact']:.2f} ms per user in batches of 16")
    return costs


def wait_for_index(server_dir: Path, timeout: float = 300) -> None:
    """The approximate path starts once a worker has built (and saved) the HNSW index; wait for that."""
    from tastemaker.serving import approx

    if not approx.ann_available():
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any((server_dir / "cache" / "serving" / "ann").glob("*.index")):
            time.sleep(5)  # let the other worker finish its own build or load the saved one
            return
        time.sleep(1)
    print("warning: no ANN index appeared; serving is exact")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--per-user", type=float, default=6.0, help="mean interactions per user")
    parser.add_argument("--factors", type=int, default=64, help="hidden_dimension of the ALS engine")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds of the three phases (medians)")
    parser.add_argument("--reuse", type=Path, help="a folder that keeps data and server state between runs")
    parser.add_argument("--deploy-only", action="store_true",
                        help="only the deploy and UpdateCampaign figures (issue #22 item 4)")
    args = parser.parse_args()

    root = args.reuse or Path(tempfile.mkdtemp(prefix="tm-serving-bench-"))
    data = root / f"data-{args.users}-{args.items}-{args.per_user}"
    started = time.time()
    paths = generate(data, args.users, args.items, args.per_user)
    print(f"data: {args.users:,} users x {args.items:,} items in {data} ({time.time() - started:.1f} s)", flush=True)
    server = LocalServer(root / f"server-{args.users}-{args.items}", import_roots=[data],
                         extra_args=["--workers", str(args.workers)], env={"TASTEMAKER_JOB_THREADS": "1"})
    server.start(timeout=120)
    try:
        state_file = server.data_dir / "bench-state.json"
        if state_file.exists():
            state = json.loads(state_file.read_text())
        else:
            state = setup(server, paths, args.factors)
            state_file.write_text(json.dumps(state))
        if args.deploy_only:
            deploy_report(server, state, state_file, args.users, args.repeat)
            return 0
        runtime = server.client("personalize-runtime")
        for k in range(20):  # warm every worker: model, catalogue and filter compile
            runtime.get_recommendations(campaignArn=state["campaign"], userId=f"u{k}")
            runtime.get_recommendations(campaignArn=state["campaign"], userId=f"u{k}", filterArn=state["filter"],
                                        filterValues={"G": '"g1"'})
        if args.items >= ANN_MIN_ITEMS:
            wait_for_index(server.data_dir)
            for k in range(20):
                runtime.get_recommendations(campaignArn=state["campaign"], userId=f"u{k}")
        workdir = Path(tempfile.mkdtemp(prefix="tm-load-"))
        jitter = machine_jitter()

        def signed() -> tuple[list[bytes], list[bytes]]:  # valid for 5 minutes: signed again each round
            return (signed_requests(server, state["campaign"], args.users, 2000, None),
                    signed_requests(server, state["campaign"], args.users, 2000, state["filter"]))

        # boto3 keeps one connection, so the loop above may have warmed one worker only: warm all of them
        # (model, catalogue, filter, ANN index) with a short run of each load before measuring.
        for warm in signed():
            load(server, warm, 3, args.connections, workdir)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in PHASES}
        for _round in range(args.repeat):  # interleaved rounds: a noisy moment hits one run, not a whole phase
            plain, filtered = signed()
            runs[PHASES[0]].append(load(server, ping_requests(server), args.seconds, args.connections, workdir))
            runs[PHASES[1]].append(load(server, plain, args.seconds, args.connections, workdir))
            mem = memory_mib(server.process.pid)  # type: ignore[union-attr]
            runs[PHASES[2]].append(load(server, filtered, args.seconds, args.connections, workdir))
            runs[PHASES[3]].append(load(server, plain, args.seconds, args.connections, workdir, rate=TARGET_RPS))
        results = {name: median_run(found) for name, found in runs.items()}
        workers = worker_memory(server.process.pid)  # type: ignore[union-attr]
        second = second_campaign(server, state, args.users, args.connections, workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        model_bytes = sum(f.stat().st_size for f in (server.data_dir / "blobs").rglob("*.npy"))
    finally:
        server.stop()
    ceiling = results[PHASES[0]]["rps"]
    print(f"\nserver: --workers {args.workers}; load: {args.connections} keep-alive connections, "
          f"{'wrk' if shutil.which('wrk') else 'asyncio'} in its own process, {args.seconds:.0f} s per phase")
    print(f"load average (1/5/15 min) at the end: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"machine jitter (a fixed {jitter['p50_ms']:.2f} ms computation after 5 ms sleeps, idle server): "
          f"p99 {jitter['p99_ms']:.2f} ms, max {jitter['max_ms']:.2f} ms")
    print(f"medians of {args.repeat} interleaved run(s) per phase; [min-max] over the runs; server CPU: all its "
          "processes, per answered request")
    print(f"{'endpoint':38} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'share of ping':>13} "
          f"{'server CPU ms':>13}  {'req/s range':>13} {'p99 range':>13}")
    for name, r in results.items():
        rps = [x["rps"] for x in runs[name]]
        p99 = [x["p99_ms"] for x in runs[name]]
        share = f"{r['rps'] / ceiling:13.0%}" if name != PHASES[3] else f"{'(paced)':>13}"
        print(f"{name:38} {r['rps']:7.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} {int(r['non_2xx']):6d} {share} "
              f"{r['cpu_ms']:13.3f}  {min(rps):6.0f}-{max(rps):<6.0f} {min(p99):6.1f}-{max(p99):<6.1f}")
    print(f"server memory under load: RSS {mem['rss_mib']:.0f} MiB, PSS {mem['pss_mib']:.0f} MiB over "
          f"{int(mem['processes'])} processes; model artifacts (mmapped, shared) {model_bytes / 2**20:.0f} MiB")
    recs, paced = results[PHASES[1]], results[PHASES[3]]
    print(f"targets: >= {TARGET_RPS:.0f} req/s (saturated): {'met' if recs['rps'] >= TARGET_RPS else 'MISSED'}; "
          f"p99 <= {TARGET_P99_MS:.0f} ms at saturation: {'met' if recs['p99_ms'] <= TARGET_P99_MS else 'MISSED'}, "
          f"at {paced['rps']:.0f} req/s offered: {'met' if paced['p99_ms'] <= TARGET_P99_MS else 'MISSED'}; "
          f">= {TARGET_SHARE:.0%} of ping: {'met' if recs['rps'] / ceiling >= TARGET_SHARE else 'MISSED'}")
    ping_cpu = results[PHASES[0]]["cpu_ms"]
    print(f"cost ratio: a GetRecommendations uses {recs['cpu_ms'] / ping_cpu:.1f}x the server CPU of a /ping; "
          f"half of ping's throughput allows {ping_cpu:.3f} ms of work on top of the framework's per request")
    print("per worker under load: " + "; ".join(f"pid {int(w['pid'])} RSS {w['rss_mib']:.0f} MiB, PSS "
                                                f"{w['pss_mib']:.0f} MiB" for w in workers))
    print(f"deploy: a second campaign on the same version ACTIVE in {second['active_s']:.2f} s, first answer at "
          f"{second['served_s']:.2f} s; reading its {second['artifact_mib']:.0f} MiB of artifacts from the blob store "
          f"takes {second['read_s']:.2f} s: ACTIVE at {second['active_s'] / max(second['read_s'], 1e-9):.1f}x the "
          "read (target <= 2x)")
    print(f"memory: the workers' PSS {second['pss_before']:.0f} -> {second['pss_after']:.0f} MiB and RSS "
          f"{second['rss_before']:.0f} -> {second['rss_after']:.0f} MiB once the second campaign served on every "
          f"worker (+{second['pss_after'] - second['pss_before']:.0f} MiB PSS against {second['artifact_mib']:.0f} MiB "
          "of artifacts: the mapped model is shared, not copied)")
    costs = ann_check(server.data_dir)
    if costs is not None:
        floor_ms = (costs["sigv4_us"] + costs["query_us"]) / 1000
        print(f"floor ratio: a GetRecommendations costs {recs['cpu_ms']:.3f} ms of server CPU = "
              f"{recs['cpu_ms'] / floor_ms:.1f}x the floor of {floor_ms:.3f} ms (SigV4 verification + one index "
              "query, measured in this run; target <= 3x)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
