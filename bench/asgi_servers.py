"""The same Tastemaker app under uvicorn and under granian: server CPU per GetRecommendations and per /ping.

`serve` runs uvicorn (httptools, uvloop). Before another server replaces it, it must cost less CPU per request on
this app, not only on a trivial one. This starts one process of each server on the state that
`bench/serving.py --reuse DIR` left (the app factory `tastemaker.cli.wiring:app_from_env`, as `serve --workers N`
starts it), sends the same requests to each (signed GetRecommendations and refused ones: the status, headers and
body must agree, apart from the per-request ids, the random exploration slots and the date and server headers),
then alternates wrk rounds between them and prints each server's CPU per request (all its processes, from /proc)
and the ratio. granian is not a dependency of the project: install it
into the environment to run this (`pip install granian`).

    .venv/bin/python bench/serving.py --reuse /tmp/tm-sv --users 400000 --items 60000 --seconds 5   # state
    .venv/bin/python bench/asgi_servers.py /tmp/tm-sv/server-400000-60000 --users 400000 --rounds 3
    .venv/bin/python bench/asgi_servers.py DIR --users 400000 --granian-mode mt   # granian's multi-threaded runtime
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ACCESS_KEY, SECRET_KEY = "TMKTESTACCESSKEY0001", "test-secret-key-not-for-production"  # LocalServer's
# the exploration slots are random draws and recommendationId is new per call: masked in answers of 200
VARYING = re.compile(rb'"recommendationId":"[^"]*"|"score":[0-9.e-]+|"itemId":"[^"]*"')


def commands(port: dict[str, int], granian_mode: str) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "uvicorn": [python, "-m", "uvicorn", "--factory", "tastemaker.cli.wiring:app_from_env", "--host", "127.0.0.1",
                    "--port", str(port["uvicorn"]), "--log-level", "warning", "--no-access-log"],
        "granian": [str(Path(python).parent / "granian"), "--interface", "asgi", "--factory", "--host", "127.0.0.1",
                    "--port", str(port["granian"]), "--workers", "1", "--runtime-mode", granian_mode,
                    "--runtime-threads", "1", "--loop", "uvloop", "--log-level", "warning",
                    "tastemaker.cli.wiring:app_from_env"],
    }


def wait_ready(port: int, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"no server answered on port {port} within {timeout:.0f} s")


def answer(port: int, raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """One raw request's status, headers (lower-case names, without the per-request ones) and body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    method, path, _ = lines[0].split(" ")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    kept = sorted((k.lower(), v) for k, v in response.getheaders()
                  if k.lower() not in ("date", "x-amzn-requestid", "server"))
    return response.status, kept, data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path, help="the server folder bench/serving.py --reuse left")
    parser.add_argument("--users", type=int, required=True, help="the --users of that run (ids u0..)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server (medians)")
    parser.add_argument("--seconds", type=float, default=6, help="wrk seconds per GetRecommendations round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--granian-mode", choices=("st", "mt"), default="st", help="granian's --runtime-mode")
    args = parser.parse_args()
    if not (Path(sys.executable).parent / "granian").exists():
        raise SystemExit("granian is not installed in this environment: pip install granian")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk)")

    import serving as bench

    from tastemaker.cli.local_server import LocalServer, free_port
    from tastemaker.cli.wiring import SETTINGS_ENV, settings_to_json
    from tastemaker.config import Settings

    os.environ.update({"TASTEMAKER_ACCESS_KEY_ID": ACCESS_KEY, "TASTEMAKER_SECRET_ACCESS_KEY": SECRET_KEY,
                       "OPENBLAS_NUM_THREADS": "1"})
    env = dict(os.environ)
    env[SETTINGS_ENV] = settings_to_json(Settings.from_env(data_dir=args.data_dir, job_threads=0))
    state = json.loads((args.data_dir / "bench-state.json").read_text())
    port = {"uvicorn": free_port(), "granian": free_port()}
    logs = Path(tempfile.mkdtemp(prefix="tm-asgi-servers-"))
    processes = {name: subprocess.Popen(command, env=env, stdout=(logs / f"{name}.log").open("w"),
                                        stderr=subprocess.STDOUT)
                 for name, command in commands(port, args.granian_mode).items()}
    try:
        servers: dict[str, Any] = {}
        for name, number in port.items():
            wait_ready(number)
            servers[name] = LocalServer(args.data_dir, port=number)
            servers[name].process = processes[name]  # bench.load counts this process tree's CPU
        requests = {name: bench.signed_requests(server, state["campaign"], args.users, 2000, None)
                    for name, server in servers.items()}
        for name, server in servers.items():  # warm: model, index, kernels
            bench.load(server, requests[name], 4, args.connections, logs)
        unsigned = [b"POST /recommendations HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", b"GET /nowhere HTTP/1.1\r\n\r\n",
                    b"GET /ping HTTP/1.1\r\n\r\n"]
        checks = [{name: requests[name][k] for name in servers} for k in range(5)]  # signed for each one's Host
        checks += [{name: raw for name in servers} for raw in unsigned]
        for check in checks:  # same status, headers and bytes (the random parts masked) from both servers
            found = []
            for name in servers:
                status, headers, body = answer(port[name], check[name])
                if status == 200:  # the masked body may differ in length: compare the header's presence only
                    headers = [(k, "-" if k == "content-length" else v) for k, v in headers]
                    body = VARYING.sub(b"-", body)
                found.append((status, headers, body))
            if found[0] != found[1]:
                raise SystemExit(f"the servers answer differently:\n  uvicorn {found[0]}\n  granian {found[1]}")
        print(f"{len(checks)} requests answered alike by both (status, headers, body; errors included)")
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        for number in range(args.rounds):
            for name in (("uvicorn", "granian") if number % 2 == 0 else ("granian", "uvicorn")):
                server = servers[name]
                ping = bench.load(server, bench.ping_requests(server), args.seconds / 2, args.connections, logs)
                recs = bench.load(server, requests[name], args.seconds, args.connections, logs)
                if recs["non_2xx"]:
                    raise SystemExit(f"{name}: {recs['non_2xx']:.0f} GetRecommendations were not answered 200")
                runs[name].append({"ping": ping["cpu_ms"] * 1e3, "recs": recs["cpu_ms"] * 1e3, "rps": recs["rps"]})
                print(f"round {number + 1} {name:8}: GetRecommendations {recs['cpu_ms'] * 1e3:6.0f} us, /ping "
                      f"{ping['cpu_ms'] * 1e3:5.0f} us of server CPU per request ({recs['rps']:.0f} req/s); load "
                      f"average {os.getloadavg()[0]:.1f}", flush=True)
        median = {name: {k: statistics.median(r[k] for r in found) for k in ("ping", "recs", "rps")}
                  for name, found in runs.items()}
        print(f"\nmedians of {args.rounds} alternating rounds, one process each, granian --runtime-mode "
              f"{args.granian_mode}:")
        for name, m in median.items():
            print(f"  {name:8} GetRecommendations {m['recs']:6.0f} us, /ping {m['ping']:5.0f} us CPU per request")
        print(f"  granian / uvicorn: GetRecommendations {median['granian']['recs'] / median['uvicorn']['recs']:.2f}x, "
              f"/ping {median['granian']['ping'] / median['uvicorn']['ping']:.2f}x")
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
