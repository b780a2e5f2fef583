"""GetRecommendations CPU per request in one process, beside its floor measured in the same process.

Drives the real ASGI application (tastemaker.cli.wiring.build_server_app: SigV4, routing, validation, the
serving path, the response, logging and metrics) with SigV4-signed requests, one at a time on a uvloop event
loop, over the state that `bench/serving.py --reuse DIR` left (its bench-state.json names the campaign); no
HTTP parsing and no sockets, so the figure is what the application itself costs. In the same process it times
the floor, the two steps every GetRecommendations must take (bench/serving.mandatory_costs: one SigV4
verification and one index query for a folded-in user vector), and prints the ratio. Rounds alternate
logging + metrics on and off (issue 17: monitoring must cost within 5%), and CPU is time.process_time(), so
the ratios hold on a loaded machine.

    .venv/bin/python bench/serving.py --reuse /tmp/tm-sv --users 400000 --items 60000 --seconds 5   # state
    .venv/bin/python bench/serving_cpu.py /tmp/tm-sv/server-400000-60000 --users 400000
    .venv/bin/python bench/serving_cpu.py DIR --users 400000 --profile      # cProfile of the on path
    valgrind --tool=callgrind --instr-atstart=no .venv/bin/python bench/serving_cpu.py DIR --users 400000 \\
        --callgrind 400      # instructions of 400 requests only (callgrind_control toggles around them)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

ACCESS_KEY, SECRET_KEY = "TMKTESTACCESSKEY0001", "test-secret-key-not-for-production"  # LocalServer's


def signed(campaign: str, users: int, count: int, host: str = "127.0.0.1:8080", seed: int = 1,
           ) -> list[tuple[dict[str, Any], bytes]]:
    """ASGI scopes and bodies of SigV4-signed GetRecommendations for random known users (valid 5 minutes)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = Credentials(ACCESS_KEY, SECRET_KEY)
    out = []
    for user in np.random.default_rng(seed).integers(0, users, count).tolist():
        body = json.dumps({"campaignArn": campaign, "userId": f"u{user}", "numResults": 25}).encode()
        request = AWSRequest(method="POST", url=f"http://{host}/recommendations", data=body,
                             headers={"Content-Type": "application/json"})
        SigV4Auth(creds, "personalize", "us-east-1").add_auth(request)
        headers = [(b"host", host.encode())]
        headers += [(k.lower().encode(), (v if isinstance(v, bytes) else v.encode())) for k, v in request.headers.items()]
        headers.append((b"content-length", str(len(body)).encode()))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/recommendations", "raw_path": b"/recommendations",
                 "query_string": b"", "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000),
                 "server": ("127.0.0.1", 8080)}
        out.append((scope, body))
    return out


async def drive(app: Any, requests: list[tuple[dict[str, Any], bytes]]) -> tuple[float, int]:
    """CPU seconds per request for answering `requests` one after another; and how many were not 200."""
    bad = 0

    async def call(scope: dict[str, Any], body: bytes) -> None:
        nonlocal bad
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal bad
            if message["type"] == "http.response.start" and message["status"] != 200:
                bad += 1

        await app(scope, receive, send)

    started = time.process_time()
    for scope, body in requests:
        await call(scope, body)
    return (time.process_time() - started) / len(requests), bad


def floor_parts(data_dir: Path) -> tuple[Any, Any, np.ndarray]:
    """The served model and its candidate index, loaded here, and the users whose vectors the floor queries."""
    from tastemaker.recipes import load_model
    from tastemaker.serving import approx
    from tastemaker.serving.models import plain_arrays

    model_json = next((data_dir / "blobs").rglob("model.json"))
    model = load_model(model_json.parent)
    plain_arrays(model)
    scorer = approx.CandidateScorer(model, data_dir / "cache")
    scorer.build_now()
    return scorer, model, np.random.default_rng(2).integers(0, model.n_users, 1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path, help="the server folder bench/serving.py --reuse left")
    parser.add_argument("--users", type=int, required=True, help="the --users of that run (ids u0..)")
    parser.add_argument("--requests", type=int, default=1500, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of on and off (medians)")
    parser.add_argument("--profile", action="store_true", help="cProfile one round with monitoring on")
    parser.add_argument("--callgrind", type=int, default=0, help="toggle callgrind around this many requests")
    args = parser.parse_args()

    import uvloop
    from threadpoolctl import threadpool_limits

    from tastemaker.cli.wiring import build_server_app
    from tastemaker.config import Settings
    from tastemaker.monitoring import logs

    threadpool_limits(1, user_api="blas")
    os.environ.update({"TASTEMAKER_ACCESS_KEY_ID": ACCESS_KEY, "TASTEMAKER_SECRET_ACCESS_KEY": SECRET_KEY})
    state = json.loads((args.data_dir / "bench-state.json").read_text())
    settings = Settings.from_env(data_dir=args.data_dir, job_threads=0)
    app = build_server_app(settings, announce=False, migrate=False)
    log_fd = os.open(args.data_dir / "serving-cpu.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    logs.REQUESTS.fd = log_fd  # like the server's stderr: a log file
    monitor = app.api.monitor
    loop = uvloop.new_event_loop()

    def monitoring(on: bool) -> None:
        logs.REQUESTS.enabled = on
        monitor.count_requests = on

    def run(requests: list[tuple[dict[str, Any], bytes]]) -> float:
        cpu, bad = loop.run_until_complete(drive(app, requests))
        if bad:
            raise SystemExit(f"{bad} of {len(requests)} requests were not answered 200")
        return cpu

    for k in range(3):  # warm: model, catalogue, ANN index (loaded in the background), kernels
        run(signed(state["campaign"], args.users, 300, seed=100 + k))
        time.sleep(2)
    run(signed(state["campaign"], args.users, 300, seed=99))

    if args.callgrind:
        requests = signed(state["campaign"], args.users, args.callgrind, seed=7)
        monitoring(True)
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
        run(requests)
        subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True, capture_output=True)
        print(f"callgrind: instrumented {args.callgrind} requests (monitoring on)")
        return 0
    if args.profile:
        import cProfile
        import pstats

        requests = signed(state["campaign"], args.users, args.requests, seed=7)
        monitoring(True)
        profiler = cProfile.Profile()
        profiler.enable()
        run(requests)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(35)
        stats.sort_stats("cumulative").print_stats(45)
        return 0

    import serving as bench

    parts = floor_parts(args.data_dir)
    figures: dict[str, list[float]] = {"on": [], "off": [], "floor": []}
    for number in range(args.rounds):
        costs = bench.mandatory_costs(*parts)  # bench/serving's floor, timed again every round
        figures["floor"].append((costs["sigv4_us"] + costs["query_us"]) / 1e3)
        for name in (("on", "off") if number % 2 == 0 else ("off", "on")):
            monitoring(name == "on")
            cpu = run(signed(state["campaign"], args.users, args.requests, seed=10 + number))
            figures[name].append(cpu * 1e3)
            print(f"round {number + 1} monitoring {name:3}: {cpu * 1e3:.3f} ms CPU per request", flush=True)
        print(f"round {number + 1} floor: SigV4 {costs['sigv4_us']:.1f} us + index query {costs['query_us']:.1f} us",
              flush=True)
    on, off, floor = (statistics.median(figures[k]) for k in ("on", "off", "floor"))
    print(f"\n{args.requests} requests per round, medians of {args.rounds} interleaved rounds, load average "
          f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"GetRecommendations in process: {on:.3f} ms CPU per request (monitoring on), {off:.3f} ms (off): "
          f"on/off {on / off:.3f} (target <= 1.05)")
    print(f"floor ratio: {on:.3f} ms = {on / floor:.2f}x the floor of {floor:.3f} ms (SigV4 + one index query, "
          "this process; target <= 3x)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
