"""Metrics summed over every process of one data directory: the API workers of `serve --workers N`, the
parent that runs their jobs, and `tastemaker worker` processes beside them.

Each process that records figures writes its series (tastemaker.monitoring.metrics) every `FLUSH_SECONDS`
to DATA_DIR/metrics/<pid>-<token>.json (written whole, then renamed, so a reader never sees half a file),
from a daemon thread: a request pays nothing for it. A reader (the Prometheus exposition, the CloudWatch
API) sums its own live series with every other process's file, so /metrics and GetMetricStatistics answer
with the totals of all of them, whichever worker takes the call. Counters stay monotonic across a process's
death: every `SWEEP_SECONDS` the files of processes that no longer run are folded into `retired.json`
(under a file lock; the folded names are kept so a fold interrupted between its write and its unlink never
counts a file twice) and removed, so the folder holds one file per live process plus one.
This plays the part of prometheus-client's multiprocess mode, which keeps no per-minute statistics and so
could not feed the CloudWatch read API.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from tastemaker.config import Settings
from tastemaker.monitoring import published
from tastemaker.monitoring.metrics import METRICS, RETENTION_MINUTES, Recorder, Series

log = logging.getLogger("tastemaker.monitoring")
FLUSH_SECONDS = 1.0
SWEEP_SECONDS = 10.0
RETIRED = "retired.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(data))
    os.replace(tmp, path)


def merged(own: Iterable[Series], others: Iterable[dict[str, Any]], now: float) -> list[Series]:
    """This process's series plus other processes' exported ones, summed per (kind, name, dimension value)."""
    since = (int(now) // 60 - RETENTION_MINUTES) * 60
    out: dict[tuple[str, str, str | None], Series] = {}
    for series in own:
        copy = Series.from_dict(series.to_dict())
        out[copy.key()] = copy
    for data in others:
        for d in data.get("series", []):
            key = (d["kind"], d["name"], d["value"])
            found = out.get(key)
            if found is None:
                out[key] = found = Series(d["kind"], d["name"], d["dimension"], d["value"], len(d["buckets"]) - 1)
            found.merge_dict(d, since)
    return list(out.values())


class Sharing:
    """One process's export of its figures, and the reader of everyone's."""

    def __init__(self, folder: Path, recorder: Recorder = METRICS) -> None:
        self.folder = folder
        self.recorder = recorder
        self.pid = os.getpid()
        self.path = folder / f"{self.pid}-{uuid.uuid4().hex[:8]}.json"
        self._stop = threading.Event()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def start(self) -> None:
        threading.Thread(target=self._loop, name="metrics-share", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        swept = 0.0
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
                if time.monotonic() - swept >= SWEEP_SECONDS:
                    swept = time.monotonic()
                    self.sweep()
            except Exception:
                log.warning("metrics: could not share this process's figures", exc_info=True)

    def flush(self) -> None:
        series = self.recorder.all_series()
        if series and self.folder.is_dir():  # a data directory removed under a process (tests) is left alone
            _write(self.path, {"pid": self.pid, "series": [s.to_dict() for s in series]})

    def sweep(self) -> None:
        """Fold the files of processes that have ended into retired.json and remove them."""
        dead = [p for p in self.folder.glob("*-*.json") if p != self.path and not _alive(_pid(p))]
        if not dead:
            return
        with open(self.folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            retired = _read(self.folder / RETIRED) or {"series": [], "folded": []}
            fresh = [p for p in dead if p.name not in retired["folded"] and p.exists()]
            if fresh:
                datas = [d for d in (_read(p) for p in fresh) if d is not None]
                total = merged([], [retired, *datas], time.time())
                retired = {"series": [s.to_dict() for s in total],
                           "folded": [*retired["folded"], *(p.name for p in fresh)][-10000:]}
                _write(self.folder / RETIRED, retired)
            for path in dead:
                path.unlink(missing_ok=True)

    def all_series(self) -> list[Series]:
        """Every process's figures summed: this one's live, the others' as last written."""
        others = [d for d in (_read(p) for p in self.folder.glob("*.json") if p != self.path) if d is not None]
        return merged(self.recorder.all_series(), others, time.time())


def _pid(path: Path) -> int:
    try:
        return int(path.name.split("-", 1)[0])
    except ValueError:
        return -1


_SHARING: Sharing | None = None
_LOCK = threading.Lock()


def share(settings: Settings) -> Sharing:
    """Start exporting this process's figures to the data directory's folder (once per process)."""
    global _SHARING
    with _LOCK:
        if _SHARING is None or _SHARING.pid != os.getpid():
            _SHARING = Sharing(settings.data_dir / "metrics")
            _SHARING.start()
            published.start(settings)  # and to the metadata store, for every replica's CloudWatch API
        return _SHARING


def all_series() -> list[Series]:
    """The figures readers show: every process's when this one shares, else its own."""
    sharing = _SHARING
    if sharing is None or sharing.pid != os.getpid():
        return METRICS.all_series()
    return sharing.all_series()
