"""The hot path's monitoring cost: what one GetRecommendations request pays for its request id, its metrics
and its log line (issue 17: "a few microseconds"), measured in-process with timeit.

    .venv/bin/python bench/monitoring_cost.py

Prints microseconds per call for: the request id; `Monitor.answered` with request logging off (metrics only)
and on (metrics + one text or JSON line written to /dev/null); the Prometheus exposition of 1,000 series.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tastemaker.api.request_id import new_request_id
from tastemaker.cli.wiring import build_services
from tastemaker.config import Settings
from tastemaker.monitoring import logs
from tastemaker.monitoring.metrics import METRICS
from tastemaker.monitoring.requests import Monitor


def per_call_us(fn, number: int = 200_000) -> float:  # type: ignore[no-untyped-def]
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
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


if __name__ == "__main__":
    main()
