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
    .venv/bin/python bench/serving_cpu.py DIR --users 400000 --breakdown    # CPU of each stage alone
    valgrind --tool=callgrind --instr-atstart=no .venv/bin/python bench/serving_cpu.py DIR --users 400000 \\
        --callgrind 400      # instructions of 400 requests only (callgrind_control toggles around them)
    .venv/bin/python bench/serving_cpu.py DIR --users 400000 --against ../main --passes 3
        # before/after: a process on the other checkout's code, then one on this one's, 3 times (medians)
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

# --code ROOT measures another checkout's tastemaker (e.g. main, for a before/after) with this harness
CODE = Path(sys.argv[sys.argv.index("--code") + 1]) if "--code" in sys.argv else Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(CODE))

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


def breakdown(app: Any, requests: list[tuple[dict[str, Any], bytes]], loop: Any) -> None:
    """Each stage of the request path over the same requests, one stage at a time (monitoring off). A stage
    run alone keeps its data in the CPU caches, so the stages add up to less than the whole request."""
    import orjson

    from tastemaker.api.convert import to_python
    from tastemaker.api.sigv4 import HeaderLists
    from tastemaker.api.validation import validate_input
    from tastemaker.control.context import RequestContext
    from tastemaker.realtime.inline import NotWarm, inline
    from tastemaker.serving import engine
    from tastemaker.serving.deployments import deployment_cache
    from tastemaker.serving.runtime import get_recommendations

    api = app.api
    count = len(requests)

    def stage(name: str, fn: Any, inputs: list[Any]) -> list[Any]:
        started = time.process_time()
        out = [fn(x) for x in inputs]
        print(f"  {name:44} {(time.process_time() - started) / count * 1e6:7.1f} us", flush=True)
        return out

    whole, _bad = loop.run_until_complete(drive(app, requests))
    print(f"whole request through the ASGI app (monitoring off)  {whole * 1e6:7.1f} us")
    headers = stage("headers (HeaderLists.from_asgi)", lambda r: HeaderLists.from_asgi(r[0]["headers"]), requests)
    stage("SigV4 verification", lambda x: api.keys.verify("POST", "/recommendations", "", x[0], x[1][1],
                                                           max_skew=api.max_skew), list(zip(headers, requests)))
    info = api.find_operation("POST", "/recommendations", headers[0])
    params = stage("JSON parse, validate, convert input", lambda r: to_python(
        info.input_shape, validate_input(info.model, orjson.loads(r[1]))), requests)
    ctx = RequestContext(api.services, "us-east-1")
    def on_loop(fn: Any) -> Any:  # as the server runs it: inline, where warm (the once-a-second re-read is not)
        def call(x: Any) -> Any:
            try:
                with inline():
                    return fn(x)
            except NotWarm:
                return fn(x)
        return call

    answers = stage("the operation (get_recommendations)", on_loop(lambda p: get_recommendations(ctx, **p)), params)
    stage("serialise the answer (orjson)", orjson.dumps, answers)
    dep = deployment_cache(api.services).resolve(api.services, params[0]["campaign_arn"], "campaign")
    queries = [engine.Query(user_id=p["user_id"], num_results=p.get("num_results")) for p in params]
    resolved = stage("  resolve (model, catalogue, history)", on_loop(lambda q: engine.resolve(api.services, dep, q)),
                     queries)
    loaded = resolved[0].loaded
    scorer = api.services.serving.scorers.get(loaded.prefix, loaded.model, api.services)
    model = loaded.model
    users = [loaded.user_position(q.user_id or "") for q in queries]
    empty = np.zeros(0, np.int32)
    histories = stage("  merged histories", lambda u: model.merged_histories(np.asarray([u]), [empty])[0], users)
    rows = [np.asarray(h, dtype=np.int64) for h in histories]
    states = stage("  fold-in + transitions (user_state kernel)", model.serving_state, rows)
    found = stage("  index query", lambda st: scorer.index.query(st[0][None, :], scorer.n_candidates)[0], states)
    stage("  merge candidates + score (kernel)", lambda x: model.merge_and_score(
        x[0], scorer.head, x[1], x[2], scorer.sample), list(zip(found, rows, states)))
    ranked = stage("  score_and_rank (all of the above + top-k, exploration)", on_loop(lambda x: engine.score_and_rank(
        api.services, dep, x[0], x[1], 25, None, np.zeros(0, np.int64))), list(zip(queries, resolved)))
    stage("  respond (softmax scores, item list)", lambda x: engine.respond(dep, x[0], x[1], engine.WIRE_ITEM_KEYS),
          list(zip(resolved, ranked)))
    try:
        from tastemaker.serving import fastpath, fused
    except ImportError:  # a checkout without the fused path
        return
    from tastemaker.recipes.collaborative import ALS_ALPHA, LAST_EVENTS_FOR_TRANSITIONS, TRANSITION_WEIGHT
    from tastemaker.serving.slots import exploration_pool

    plan = fastpath.plan_for(api.services, loaded)
    assert plan is not None, "the model is not served through its index"
    stage("the fused path (fastpath.recommend: resolve .. item list)", on_loop(
        lambda q: fastpath.recommend(api.services, dep, q)), queries)
    no_events, no_mask = np.zeros(0, np.int32), np.zeros(0, np.bool_)
    states = stage("  user_state (history merge, fold-in, transitions)", lambda u: fused.user_state(
        plan.hist_indptr, plan.hist_items, u, no_events, plan.factors, plan.gram_inverse, *plan.trans,
        LAST_EVENTS_FOR_TRANSITIONS, plan.decay, ALS_ALPHA, TRANSITION_WEIGHT), users)
    found = stage("  index query", lambda st: plan.index.query(st[1][None, :], plan.n_candidates)[0], states)
    picks = stage("  pick (merge candidates, score, top-k)", lambda x: fused.pick(
        x[0], plan.head, x[1][0], x[1][2], x[1][3], plan.sample, plan.factors, x[1][1], plan.trend_weight,
        plan.recent_popularity, plan.demote, plan.cold_scores, no_mask, 25), list(zip(found, states)))
    catalog = resolved[0].catalog
    best, rest = exploration_pool(catalog, 30.0)
    draws = np.random.default_rng(0).random(132)
    stage("  finish (4 exploration slots, softmax scores)", lambda x: fused.finish(
        x[0][5], best, rest, no_mask, 4, draws, catalog.n_model, x[0][0], x[0][2], x[0][1], x[0][4], catalog.n_model,
        plan.factors, x[1][1], x[0][3], x[1][2], x[1][3], plan.trend_weight, plan.recent_popularity, x[1][0],
        plan.demote, plan.cold_scores), list(zip(picks, states)))


def compare(args: argparse.Namespace) -> int:
    """Alternate processes on the other checkout's code (base) and this one's (new), each its own rounds; print
    each process's medians and the medians over the passes."""
    results: dict[str, list[dict[str, float]]] = {"base": [], "new": []}
    for number in range(args.passes):
        for label, code in (("base", args.against.resolve()), ("new", Path(__file__).resolve().parents[1])):
            command = [sys.executable, __file__, str(args.data_dir), "--users", str(args.users), "--requests",
                       str(args.requests), "--rounds", str(args.rounds), "--code", str(code)]
            env = {**os.environ, "PYTHONPATH": str(code)}
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode or not lines:
                print(done.stdout[-2000:], done.stderr[-4000:], sep="\n")
                raise SystemExit(f"the {label} process failed")
            found = json.loads(lines[-1][len("RESULT "):])
            results[label].append(found)
            print(f"pass {number + 1} {label:4} ({code}): on {found['on']:.3f} ms, off {found['off']:.3f} ms CPU per "
                  f"request, floor {found['floor']:.3f} ms: {found['ratio']:.2f}x; load average {found['load']}",
                  flush=True)
    print(f"\nmedians of {args.passes} interleaved passes ({args.rounds} rounds of {args.requests} requests each, "
          f"monitoring on), load average now {' / '.join(f'{v:.2f}' for v in os.getloadavg())}:")
    for label, found in results.items():
        on, floor = (statistics.median(f[k] for f in found) for k in ("on", "floor"))
        ratio = statistics.median(f["ratio"] for f in found)
        print(f"  {label:4}: {on:.3f} ms CPU per request, floor {floor:.3f} ms, floor ratio {ratio:.2f}x "
              "(target <= 3x)")
    base = statistics.median(f["on"] for f in results["base"])
    new = statistics.median(f["on"] for f in results["new"])
    print(f"  new / base CPU per request: {new / base:.3f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path, help="the server folder bench/serving.py --reuse left")
    parser.add_argument("--users", type=int, required=True, help="the --users of that run (ids u0..)")
    parser.add_argument("--requests", type=int, default=500, help="requests per round")
    parser.add_argument("--rounds", type=int, default=12, help="interleaved rounds of on and off (medians)")
    parser.add_argument("--profile", action="store_true", help="cProfile one round with monitoring on")
    parser.add_argument("--callgrind", type=int, default=0, help="toggle callgrind around this many requests")
    parser.add_argument("--breakdown", action="store_true", help="CPU per request of each stage, run separately")
    parser.add_argument("--code", type=Path, help="the checkout whose tastemaker is measured (default: this one)")
    parser.add_argument("--against", type=Path, help="before/after: alternate with processes on this checkout")
    parser.add_argument("--passes", type=int, default=3, help="with --against: processes per checkout")
    args = parser.parse_args()
    if args.against is not None:
        return compare(args)

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
    if args.breakdown:
        breakdown(app, signed(state["campaign"], args.users, args.requests, seed=5), loop)
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
        print(f"round {number + 1}: monitoring on {figures['on'][-1]:.3f} ms, off {figures['off'][-1]:.3f} ms CPU per "
              f"request; floor: SigV4 {costs['sigv4_us']:.1f} us + index query {costs['query_us']:.1f} us", flush=True)
    on, off, floor = (statistics.median(figures[k]) for k in ("on", "off", "floor"))
    paired = statistics.median(a / b for a, b in zip(figures["on"], figures["off"], strict=True))
    print(f"\n{args.requests} requests per round, medians of {args.rounds} interleaved rounds (minimum in brackets: "
          f"other processes only ever add), load average {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"GetRecommendations in process: {on:.3f} [{min(figures['on']):.3f}] ms CPU per request with monitoring on, "
          f"{off:.3f} [{min(figures['off']):.3f}] ms off: on/off {paired:.3f} (median of the rounds' ratios; "
          f"minima {min(figures['on']) / min(figures['off']):.3f}; target <= 1.05)")
    print(f"floor ratio: {on:.3f} ms = {on / floor:.2f}x the floor of {floor:.3f} ms [{min(figures['floor']):.3f}] "
          f"(SigV4 + one index query, CPU time in this process; minima {min(figures['on']) / min(figures['floor']):.2f}x; "
          "target <= 3x)")
    print("RESULT " + json.dumps({"on": on, "off": off, "floor": floor, "ratio": on / floor,
                                  "load": " / ".join(f"{v:.2f}" for v in os.getloadavg())}))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
