"""Every program in examples/ runs green against a live server (in order: each step builds on the last)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tastemaker.cli.local_server import LocalServer
from tests.cli import live

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROGRAMS = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py"))
NOT_IMPLEMENTED = re.compile(r"NotImplementedException\).*?calling the (\w+) operation|calling the (\w+) operation.*"
                             r"NotImplementedException")


@pytest.fixture(scope="session")
def example_server() -> Iterator[LocalServer]:
    """The server tests/cli also uses (started once per session)."""
    yield live.acquire()
    live.release()


@pytest.fixture(scope="module")
def runs(example_server: LocalServer) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run the programs one after the other, the way a reader would; stop at the first failure."""
    env = dict(os.environ, TASTEMAKER_ENDPOINT=example_server.url, AWS_ACCESS_KEY_ID=example_server.access_key,
               AWS_SECRET_ACCESS_KEY=example_server.secret_key, AWS_DEFAULT_REGION="us-east-1",
               TASTEMAKER_DATA_DIR=str(example_server.data_dir), EXAMPLE_NAME=f"ex-{uuid.uuid4().hex[:6]}")
    env.pop("TASTEMAKER_IMPORT_DIR", None)
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    for program in PROGRAMS:
        results[program] = subprocess.run([sys.executable, str(EXAMPLES / program)], cwd=EXAMPLES.parent, env=env,
                                          capture_output=True, text=True, timeout=600, check=False)
        if results[program].returncode != 0 and program != "07_domain_recommender.py":
            break
    return results


def test_there_is_a_program_for_each_step_of_the_manual() -> None:
    assert len(PROGRAMS) >= 9
    text = " ".join(PROGRAMS)
    for word in ("dataset_group", "import", "train", "campaign", "events", "filters", "recommender", "monitor",
                 "cleanup"):
        assert word in text


@pytest.mark.slow
@pytest.mark.parametrize("program", PROGRAMS)
def test_example_runs(runs: dict[str, subprocess.CompletedProcess[str]], program: str) -> None:
    if program not in runs:
        failed = next(name for name, run in runs.items() if run.returncode != 0)
        pytest.skip(f"not run: {failed} failed before it")
    run = runs[program]
    if run.returncode != 0:
        missing = NOT_IMPLEMENTED.search(run.stderr)
        if missing:
            pytest.skip(f"{program} needs {missing.group(1) or missing.group(2)}, not implemented by the server yet")
        pytest.fail(f"{program} failed:\n{run.stdout}\n{run.stderr}")
    assert run.stdout.strip(), f"{program} printed nothing"
