"""The hot path's monitoring cost: what one GetRecommendations request pays for its request id, its metrics
and its log line (issue 17: "a few microseconds"), measured in-process with timeit, and with `--serving` the
same comparison end to end: bench/serving's GetRecommendations load against two servers on the same data, one
with request logging and metrics on (the defaults) and one with both off (`--log-level warning`,
TASTEMAKER_REQUEST_METRICS=off), in interleaved rounds of the same run.

    .venv/bin/python bench/monitoring_cost.py
    .venv/bin/python bench/monitoring_cost.py --serving --users 20000 --items 5000 --seconds 6 --repeat 3
    .venv/bin/python bench/monitoring_cost.py --serving --state /tmp/tm-sv/server-400000-60000 --users 400000

With --state, the servers run on a folder `bench/serving.py --reuse` left (its bench-state.json names the
campaign; --users must be that run's) instead of generating and training new data.

In-process it prints microseconds per call for: the request id; `Monitor.answered` with request logging off
(metrics only) and on (metrics + one text or JSON line written to /dev/null); the Prometheus exposition of
1,000 series. With --serving it prints per round and as medians: throughput and the servers' CPU time per
answered request (all their processes, from /proc), and the on/off ratios; CPU per request is the figure
that holds on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tastemaker.api.request_id import new_request_id
from tastemaker.cli.wiring import build_services
from tastemaker.config import Settings
from tastemaker.monitoring import logs
from tastemaker.monitoring.metrics import METRICS
from tastemaker.monitoring.requests import Monitor


def per_call_us(fn, number: int = 200_000) -> float:  # type: ignore[no-untyped-def]
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def in_process() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(data_dir=Path(tmp), log_level="warning"))
        monitor = Monitor(services)
        campaign = "arn:aws:personalize:us-east-1:000000000000:campaign/bench"
        params = {"campaign_arn": campaign, "user_id": "u1", "num_results": 25}

        def answered() -> None:
            monitor.answered(started=time.perf_counter(), request_id="0f8fad5b-d9cb-469f-a165-70867728950e",
                             operation="GetRecommendations", service="personalize-runtime", input_shape=None,
                             access_key_id="TMKBENCHKEY000000001", username="root", region="us-east-1",
                             raw=None, params=params, payload=None, status=200, error_code=None,
                             error_message=None, source_ip="127.0.0.1", user_agent=None)

        print(f"request id                         {per_call_us(new_request_id):6.2f} us")
        logs.REQUESTS.enabled = False
        print(f"metrics only (request log off)     {per_call_us(answered):6.2f} us")
        devnull = os.open(os.devnull, os.O_WRONLY)
        logs.REQUESTS.enabled, logs.REQUESTS.fd = True, devnull
        for fmt in ("text", "json"):
            logs.REQUESTS.json = fmt == "json"
            print(f"metrics + {fmt:4} log line to /dev/null {per_call_us(answered):6.2f} us")
        for k in range(1000):
            METRICS.request(time.time(), "GetRecommendations", {"campaign_arn": f"{campaign}-{k}"}, 200, 3.0)
        print(f"Prometheus exposition, 1000 series {per_call_us(monitor.exposition, number=20) / 1000:6.2f} ms")


def serving(args: argparse.Namespace) -> None:
    import serving as bench  # bench/serving.py: data, set-up and load generation

    from tastemaker.cli.local_server import LocalServer

    if args.state is not None:
        state_dir = args.state
        state = json.loads((state_dir / "bench-state.json").read_text())
    else:
        root = Path(tempfile.mkdtemp(prefix="tm-monitoring-cost-"))
        data = root / "data"
        paths = bench.generate(data, args.users, args.items, args.per_user)
        state_dir = root / "server"
        with LocalServer(state_dir, import_roots=[data], env={"TASTEMAKER_JOB_THREADS": "1"}) as trainer:
            state = bench.setup(trainer, paths, args.factors)
        (state_dir / "bench-state.json").write_text(json.dumps(state))  # so a later run can pass --state
        print(f"state kept in {state_dir} (pass it as --state to measure again without training)")
    common = ["--workers", str(args.workers)]
    # Both measured servers run no jobs (no maintenance loop), so they differ in the monitoring only.
    on = LocalServer(state_dir, extra_args=common, env={"TASTEMAKER_JOB_THREADS": "0"})
    off = LocalServer(state_dir, extra_args=[*common, "--log-level", "warning"],
                      env={"TASTEMAKER_JOB_THREADS": "0", "TASTEMAKER_REQUEST_METRICS": "off"})
    try:
        on.start(timeout=120)
        off.start(timeout=120)
        workdir = Path(tempfile.mkdtemp(prefix="tm-load-"))
        servers = {"on": on, "off": off}
        for server in servers.values():  # warm every worker (model, catalogue) before measuring
            requests = bench.signed_requests(server, state["campaign"], args.users, 2000, None)
            bench.load(server, requests, 3, args.connections, workdir)
        runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
        for number in range(args.repeat):
            order = ("on", "off") if number % 2 == 0 else ("off", "on")  # neither always runs first
            for name in order:
                requests = bench.signed_requests(servers[name], state["campaign"], args.users, 2000, None)
                result = bench.load(servers[name], requests, args.seconds, args.connections, workdir)
                runs[name].append(result)
                print(f"round {number + 1} {name:3}: {result['rps']:7.0f} req/s, server CPU "
                      f"{result['cpu_ms']:.3f} ms per request, non-2xx {int(result['non_2xx'])}", flush=True)
    finally:
        for server in (off, on):
            if server.process is not None:
                server.stop()
    rps = {name: statistics.median(r["rps"] for r in found) for name, found in runs.items()}
    cpu = {name: statistics.median(r["cpu_ms"] for r in found) for name, found in runs.items()}
    data = f"the state in {args.state}" if args.state else f"{args.users:,} users x {args.items:,} items"
    print(f"\n{data}, --workers {args.workers}, {args.connections} connections, "
          f"{args.seconds:.0f} s per run, medians of {args.repeat} interleaved rounds; load average at the end "
          f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for name in ("on", "off"):
        print(f"logging + metrics {name:3}: {rps[name]:7.0f} req/s, {cpu[name]:.3f} ms server CPU per request")
    print(f"ratio on/off: throughput {rps['on'] / rps['off']:.3f}, server CPU per request "
          f"{cpu['on'] / cpu['off']:.3f} (target: within 5%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serving", action="store_true", help="compare two servers under load (else in-process)")
    parser.add_argument("--state", type=Path, help="a server folder bench/serving.py --reuse left (no training)")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--per-user", type=float, default=6.0)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--repeat", type=int, default=4, help="interleaved rounds (medians)")
    args = parser.parse_args()
    if args.serving:
        serving(args)
    else:
        in_process()


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
