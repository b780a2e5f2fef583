"""Every failure a user can cause on the command line prints one clear line on stderr (no traceback) and exits
non-zero; every flag has help; `--version` answers; `make run` takes PORT and ARGS."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tastemaker import __version__
from tastemaker.cli import client
from tastemaker.cli.local_server import LocalServer
from tastemaker.cli.main import build_parser
from tastemaker.cli.sample_data import generate

REPO = Path(__file__).resolve().parents[2]


def tastemaker(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tastemaker.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout, check=False)


def assert_one_clear_line(run: subprocess.CompletedProcess[str], *words: str) -> None:
    assert run.returncode != 0
    assert "Traceback" not in run.stderr, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_a_bad_db_url_is_one_line(tmp_path: Path) -> None:
    run = tastemaker("db", "upgrade", "--data-dir", str(tmp_path), "--db-url", "not-a-url")
    assert_one_clear_line(run, "database URL", "--db-url")


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = tastemaker("db", "upgrade", "--data-dir", str(tmp_path),
                     "--db-url", f"postgresql+psycopg://nobody@127.0.0.1:{port}/nothing")
    assert_one_clear_line(run, "cannot open the metadata database", "--db-url")


def test_a_bogus_log_level_names_the_choices(tmp_path: Path) -> None:
    run = tastemaker("serve", "--data-dir", str(tmp_path), "--log-level", "bogus")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "invalid choice: 'bogus'" in run.stderr and "debug" in run.stderr


def test_a_busy_port_says_so_before_claiming_to_listen(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = tastemaker("serve", "--data-dir", str(tmp_path), "--port", str(port))
    assert_one_clear_line(run, f"127.0.0.1:{port}", "make run PORT=")
    assert "listening" not in run.stdout


def test_quickstart_with_data_missing_a_domain_field_is_one_line(tmp_path: Path, server_env: LocalServer) -> None:
    data = tmp_path / "videos"
    generate(data, domain="VIDEO_ON_DEMAND", users=40, items=30, interactions=400)  # no PRICE, CATEGORY_L1
    run = tastemaker("quickstart", "--domain", "ECOMMERCE", "--data", str(data),
                     "--data-dir", str(server_env.data_dir), timeout=300)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr, run.stderr
    assert "missing required field(s)" in run.stderr


def test_version() -> None:
    run = tastemaker("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"tastemaker {__version__}"


def test_every_flag_of_every_command_has_help() -> None:
    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "tastemaker")
    assert not missing


def test_the_printed_command_is_the_one_that_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "argv", [".venv/bin/tastemaker", "quickstart"])
    monkeypatch.setenv("PATH", str(tmp_path))  # no tastemaker on PATH, as after `make install`
    assert client.program() == ".venv/bin/tastemaker"
    monkeypatch.setattr(sys, "argv", ["/x/y/main.py"])
    assert client.program() == f"{sys.executable} -m tastemaker.cli.main"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_takes_a_port_and_flags() -> None:
    run = subprocess.run(["make", "-n", "-W", "pyproject.toml", "run", "PORT=8081", "ARGS=--job-threads 4"],
                         cwd=REPO, capture_output=True, text=True, check=False)
    serve = [line for line in run.stdout.splitlines() if " serve " in line]
    assert serve and "--port 8081" in serve[-1] and serve[-1].endswith("--job-threads 4"), run.stdout


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    run = tastemaker("db", "upgrade", "--data-dir", str(tmp_path / "file"))
    assert_one_clear_line(run, str(tmp_path / "file"))


def test_a_data_dir_without_a_database_is_one_line(tmp_path: Path) -> None:
    run = tastemaker("evaluation", "--solution-version", "arn:aws:personalize:us-east-1:000000000000:solution/x/y",
                     "--data-dir", str(tmp_path))
    assert_one_clear_line(run, "no Tastemaker tables", "--data-dir")


def test_an_unknown_solution_version_is_one_line(tmp_path: Path) -> None:
    assert tastemaker("db", "upgrade", "--data-dir", str(tmp_path)).returncode == 0
    run = tastemaker("evaluation", "--solution-version", "arn:aws:personalize:us-east-1:000000000000:solution/x/y",
                     "--data-dir", str(tmp_path))
    assert_one_clear_line(run, "ResourceNotFoundException")
