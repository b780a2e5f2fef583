"""What a running job's task sees of its lease: stop requests, a lost lease, a hand-back; and its temp folders.

A task receives a `Lease` as its `should_stop` callable: it answers True when the user asked to stop, when the
job was taken from this owner (`lost`: its writes would be refused, see store/queue.py) or when the process is
shutting down and hands the job back (`leaving`). `abandoned` tells the last two apart from a stop request: the
work is thrown away, so subprocesses are killed at once rather than asked to stop.

Temp folders of a job are named `tm-<what>-j<job id>.<lease>-<random>` under DATA_DIR/tmp; `sweep_temp` removes
those whose job no longer runs under that lease (the owner was killed), and folders of other kinds (`tm-put-`)
older than `UNOWNED_TEMP_SECONDS`.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

from tastemaker.services import Services
from tastemaker.store import queue

log = logging.getLogger("tastemaker.jobs")

TEMP_KINDS = ("import", "train", "rec", "put", "batch", "segment", "export", "delete")
UNOWNED_TEMP_SECONDS = 900.0
_TEMP = re.compile(rf"^tm-(?:{'|'.join(TEMP_KINDS)})-(?:j(\d+)\.(\d+)-)?")


class Lease:
    """Stop signals of one claimed job; call it for "should I stop?"."""

    def __init__(self) -> None:
        self.cancel = threading.Event()  # the user asked to stop (Stop* operations)
        self.lost = threading.Event()  # another owner has the job: write nothing
        self.leaving = threading.Event()  # this process shuts down and hands the job back

    def __call__(self) -> bool:
        return self.cancel.is_set() or self.lost.is_set() or self.leaving.is_set()

    @property
    def abandoned(self) -> bool:
        """The work will be thrown away (lost or handed back): stop subprocesses now."""
        return self.lost.is_set() or self.leaving.is_set()


def temp_root(services: Services) -> Path:
    root = services.settings.data_dir / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


def job_temp_dir(services: Services, what: str, job: queue.Job) -> Path:
    """A fresh temp folder owned by this claim of the job (swept once the claim is over)."""
    return Path(tempfile.mkdtemp(prefix=f"tm-{what}-j{job.id}.{job.lease}-", dir=temp_root(services)))


def sweep_temp(services: Services) -> list[str]:
    """Remove temp folders that no running job owns; returns their names."""
    root = services.settings.data_dir / "tmp"
    if not root.is_dir():
        return []
    entries = list(root.iterdir())  # before reading the leases: a folder listed here was made after its claim
    live = queue.running_leases(services.engine)
    removed = []
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None:
            continue
        if match.group(1) is not None:
            owned = (int(match.group(1)), int(match.group(2))) in live
        else:
            try:
                owned = time.time() - entry.stat().st_mtime < UNOWNED_TEMP_SECONDS
            except FileNotFoundError:
                continue
        if not owned:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.name)
    if removed:
        log.warning("removed %d temp folders of jobs that no longer run: %s", len(removed), ", ".join(removed[:5]))
    return removed
