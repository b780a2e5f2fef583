"""Metrics summed over processes (tastemaker.monitoring.shared): files of other processes add to this one's
live figures, and an ended process's figures are folded once into retired.json, never lost or counted twice."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson

from tastemaker.monitoring.metrics import Recorder
from tastemaker.monitoring.shared import RETIRED, Sharing


def _totals(sharing: Sharing) -> dict[str, tuple[int, int]]:
    return {s.name: (s.requests, s.client_errors) for s in sharing.all_series() if s.kind == "request"}


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_figures_of_other_processes_add_up_and_survive_their_end(tmp_path: Path) -> None:
    now = time.time()
    mine, other = Recorder(), Recorder()
    for k in range(3):
        mine.request(now, "GetRecommendations", {"campaign_arn": "c1"}, 200, 2.0 + k)
    for k in range(5):
        other.request(now, "GetRecommendations", {"campaign_arn": "c1"}, 400 if k == 0 else 200, 1.0)
    other.job(now, "import", "arn:dataset", False, 3.0)
    here = Sharing(tmp_path, mine)
    there = Sharing(tmp_path, other)
    there.path = tmp_path / f"{_dead_pid()}-deadbeef.json"  # a process that has ended since its last flush
    there.flush()
    here.flush()
    assert _totals(here) == {"GetRecommendations": (8, 1)}
    (series,) = [s for s in here.all_series() if s.kind == "request"]
    (window,) = series.minutes.values()
    assert window[:4] == [8, 1, 0, 7] and window[5] == 1.0 and window[6] == 4.0  # count, 4xx, 5xx, min, max
    assert [s.requests for s in here.all_series() if s.kind == "job"] == [1]

    here.sweep()
    assert not there.path.exists() and (tmp_path / RETIRED).exists()
    assert _totals(here) == {"GetRecommendations": (8, 1)}  # folded, still counted once
    mine.request(now, "GetRecommendations", {"campaign_arn": "c1"}, 200, 1.0)
    assert _totals(here) == {"GetRecommendations": (9, 1)}  # this process's live figures

    # a fold interrupted after writing retired.json but before the unlink never counts the file twice
    again = Sharing(tmp_path, other)
    again.path = tmp_path / there.path.name
    again.flush()
    here.sweep()
    assert _totals(here) == {"GetRecommendations": (9, 1)}
    assert orjson.loads((tmp_path / RETIRED).read_bytes())["folded"] == [there.path.name]
