"""One SparkSession per process for the configured master, and Spark failures as one-line reasons.

The session is made on first use and kept for the life of the process (a job worker runs many jobs;
starting a driver JVM costs seconds). Executors run the same Python as this process (`spark.pyspark.python`)
(PYSPARK_PYTHON is set to it) unless PYSPARK_PYTHON names another: on a cluster that interpreter must have
tastemaker installed, at the same version as the driver (docs/scaling.md).

A local master (`local`, `local[N]`, `local[*]`) runs its executors inside the driver's JVM, whose heap is
Spark's 1g unless `spark.driver.memory` is set: too small for MLlib's ALS from about 2M interactions. Unless
the user set that (spark-defaults.conf, PYSPARK_SUBMIT_ARGS, SPARK_DRIVER_MEMORY), a local master gets
`local_driver_memory()`: half the memory of the machine (or of its cgroup limit), between 1 GiB and 31 GiB
(the largest heap with compressed object pointers). pyspark passes the builder's settings to spark-submit
when it starts the JVM, so the heap acts; it is logged once. A cluster master is left alone: its executors'
memory is the cluster's configuration.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("tastemaker.spark")
_lock = threading.Lock()
LOCAL_MASTER = re.compile(r"local(\[[^\]]*\])?")
MIN_HEAP_MIB, MAX_HEAP_MIB = 1024, 31 * 1024
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
        builder = SparkSession.builder.master(master).appName("tastemaker").config("spark.ui.showConsoleProgress",
                                                                                  "false")
        local = LOCAL_MASTER.fullmatch(master) is not None
        where = driver_memory_source() if local else None
        if local and where is None:
            where = "the default for a local master: half the memory; set spark.driver.memory to choose"
            builder = builder.config("spark.driver.memory", f"{local_driver_memory()}m")
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # py4j and Spark errors share no base class
            raise SparkUnavailable(f"Could not start Spark on master {master!r}: {failure_reason(exc)}") from exc
        session.sparkContext.setLogLevel("WARN")
        if local:
            log.info("Spark master %s: driver JVM heap %d MiB (%s)", master, jvm_max_heap(session) >> 20, where)
        _sessions[master] = session
        return session


def jvm_max_heap(session: Any) -> int:
    """The driver JVM's heap limit in bytes (Runtime.maxMemory: what -Xmx, i.e. spark.driver.memory, set)."""
    return int(session.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory())


def driver_memory_source() -> str | None:
    """Where the user set the driver's heap (spark-defaults.conf, PYSPARK_SUBMIT_ARGS, SPARK_DRIVER_MEMORY),
    or None."""
    if re.search(r"--driver-memory|spark\.driver\.memory", os.environ.get("PYSPARK_SUBMIT_ARGS", "")):
        return "PYSPARK_SUBMIT_ARGS"
    if os.environ.get("SPARK_DRIVER_MEMORY"):
        return "SPARK_DRIVER_MEMORY"
    defaults = spark_conf_dir() / "spark-defaults.conf"
    try:
        lines = defaults.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:  # "key value", "key=value" or "key: value"
        if re.split(r"[\s=:]", line.strip(), maxsplit=1)[0] == "spark.driver.memory":
            return str(defaults)
    return None


def spark_conf_dir() -> Path:
    """The folder spark-submit reads spark-defaults.conf from: SPARK_CONF_DIR, else SPARK_HOME/conf (pyspark's
    own folder when pyspark is pip-installed, as it sets SPARK_HOME to it)."""
    if os.environ.get("SPARK_CONF_DIR"):
        return Path(os.environ["SPARK_CONF_DIR"])
    if os.environ.get("SPARK_HOME"):
        return Path(os.environ["SPARK_HOME"]) / "conf"
    import pyspark

    return Path(pyspark.__file__).parent / "conf"


def local_driver_memory() -> int:
    """MiB of heap for a local master's driver: half the machine's memory, or of this process's cgroup limit
    when lower, between MIN_HEAP_MIB and MAX_HEAP_MIB."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            limit = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if limit.isdigit():
            total = min(total, int(limit))
    return max(MIN_HEAP_MIB, min(MAX_HEAP_MIB, total // 2 // 2**20))


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
