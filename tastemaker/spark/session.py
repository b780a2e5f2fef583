"""One SparkSession per process for the configured master, and Spark failures as one-line reasons.

The session is made on first use and kept for the life of the process (a job worker runs many jobs;
starting a driver JVM costs seconds). Executors run the same Python as this process (`spark.pyspark.python`)
(PYSPARK_PYTHON is set to it) unless PYSPARK_PYTHON names another: on a cluster that interpreter must have tastemaker installed, at the
same version as the driver (docs/scaling.md).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

_lock = threading.Lock()
_sessions: dict[str, Any] = {}


class SparkUnavailable(Exception):
    """The Spark backend is configured but cannot start (no pyspark, no Java, unreachable master)."""


def spark_session(master: str) -> Any:
    """The process's SparkSession on `master` (made once, reused by every job of the process)."""
    with _lock:
        session = _sessions.get(master)
        if session is not None:
            return session
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise SparkUnavailable("Spark is configured (TASTEMAKER_SPARK_MASTER) but pyspark is not "
                                   "installed; install the extra: pip install 'tastemaker[spark]'.") from exc
        # pyspark takes the executors' interpreter from this variable (default `python3`, not our venv).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        try:
            session = (SparkSession.builder.master(master).appName("tastemaker")
                       .config("spark.ui.showConsoleProgress", "false")
                       .getOrCreate())
        except Exception as exc:  # py4j and Spark errors share no base class
            raise SparkUnavailable(f"Could not start Spark on master {master!r}: {failure_reason(exc)}") from exc
        session.sparkContext.setLogLevel("WARN")
        _sessions[master] = session
        return session


JVM_HEAP_HINT = ("; the Spark JVM ran out of heap: raise spark.driver.memory (a local[N] master runs its executors "
                 "inside the driver, whose heap is 1g unless set) or, on a cluster, spark.executor.memory, in "
                 "spark-defaults.conf")


def failure_reason(exc: BaseException) -> str:
    """A Spark/py4j exception as one line: the Python error raised on an executor when there is one
    (its last line, e.g. `MemoryError: ...`), else the first line of the JVM's message. A JVM out of heap
    (`java.lang.OutOfMemoryError`) also says which setting to raise (with_hint)."""
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):  # a Python traceback from an executor ends with "Type: message"
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception")) and " " not in head and not head.startswith(("py4j", "org.", "java")):
            return line[:500]
    return with_hint(text, lines[0] if lines else type(exc).__name__)


def with_hint(text: str, reason: str) -> str:
    """`reason` (at most 500 characters), plus how to fix it where the error's text shows a known cause."""
    if "java.lang.OutOfMemoryError" in text:
        return reason[:500 - len(JVM_HEAP_HINT)] + JVM_HEAP_HINT
    return reason[:500]
