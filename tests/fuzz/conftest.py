"""The fuzz suite's live server, seeded world and snapshotter; the case count in pytest's summary.

Budget: `TASTEMAKER_FUZZ_EXAMPLES` examples per operation (default DEFAULT_EXAMPLES, derandomized: the same
cases on every run, as CI needs). Setting the variable asks for that many examples per operation with
fresh random cases each run (Hypothesis prints the seed to reproduce a failure). With
`TASTEMAKER_FUZZ_OUTCOMES=1` the summary also lists every (operation, mode, status, code) with a sample message:
how deep the valid cases reach.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tastemaker.cli.local_server import LocalServer
from tests.fuzz.harness import STATS, Fuzzer
from tests.fuzz.world import Snapshots, db_url, seed

DEFAULT_EXAMPLES = 20
OPT_IN = os.environ.get("TASTEMAKER_FUZZ_EXAMPLES", "").strip()
EXAMPLES = int(OPT_IN) if OPT_IN else DEFAULT_EXAMPLES


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory, moto_s3: str) -> Iterator[tuple[LocalServer, Path]]:
    import_root = tmp_path_factory.mktemp("fuzz-imports")
    data_dir = tmp_path_factory.mktemp("fuzz-server")
    srv = LocalServer(data_dir, import_roots=[import_root],
                      env={"TASTEMAKER_S3_ENDPOINT_URL": moto_s3, "AWS_ACCESS_KEY_ID": "testing",
                           "AWS_SECRET_ACCESS_KEY": "testing"})
    srv.start()
    yield srv, import_root
    srv.stop()


@pytest.fixture(scope="session")
def fuzzer(fuzz_server: tuple[LocalServer, Path]) -> Iterator[Fuzzer]:
    server, import_root = fuzz_server
    world = seed(server.client("personalize"), import_root)
    snapshots = Snapshots(db_url(server.data_dir))
    fuzzer = Fuzzer(server, world, snapshots)
    yield fuzzer
    fuzzer.close()
    snapshots.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not STATS.cases:
        return
    modes = ", ".join(f"{mode} {n}" for mode, n in sorted(STATS.by_mode.items()))
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(STATS.by_status.items()))
    terminalreporter.section("fuzz")
    terminalreporter.write_line(f"{STATS.cases} cases over {len(STATS.operations)} operations ({modes}); "
                                f"answers {statuses}; {STATS.closed_unanswered} oversized bodies got a closed "
                                "connection before their 413 could be read")
    if os.environ.get("TASTEMAKER_FUZZ_OUTCOMES"):  # one line per (operation, mode, status, code)
        for (name, mode, status, code), count in sorted(STATS.outcomes.items()):
            message = STATS.messages.get((name, mode, status, code), "")
            terminalreporter.write_line(f"  {name:32} {mode:8} {status} {code:34} {count:3} {message}")
    failed = STATS.failed_operations
    terminalreporter.write_line(f"{len(failed)} operations failed a property" + (f": {', '.join(failed)}"
                                                                                if failed else ""))


@pytest.fixture(scope="session")
def personalize(fuzz_server: tuple[LocalServer, Path]):  # type: ignore[no-untyped-def]
    return fuzz_server[0].client("personalize")
