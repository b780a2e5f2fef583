"""`pip install .` gives a working `tastemaker` outside the repository: the wheel carries every module and the
migrations, the installed command reports the release version, migrates a fresh database and serves.

The wheel is built without network (`--no-build-isolation`, the venv's setuptools) and installed with
`--no-deps` into a fresh venv that sees the project venv's dependencies through a .pth file, never the
repository itself: the test runs the installed copy from an empty folder with no PYTHONPATH.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tastemaker import __version__
from tastemaker.cli.local_server import free_port

REPO = Path(__file__).resolve().parents[2]


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_the_wheel_installs_and_runs_outside_the_repository(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HOME"] = str(tmp_path)
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ and *.egg-info there
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "tastemaker", source / "tastemaker", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
         str(source)], tmp_path, env)
    wheel = next(wheels.glob("tastemaker-*.whl"))
    assert wheel.name.startswith(f"tastemaker-{__version__}-")
    names = zipfile.ZipFile(wheel).namelist()
    migrations = sorted(p.name for p in (REPO / "tastemaker/store/migrations/versions").glob("0*.py"))
    for name in migrations:
        assert f"tastemaker/store/migrations/versions/{name}" in names
    assert "tastemaker/store/migrations/env.py" in names and not any(n.startswith("tests/") for n in names)

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    packages = next(venv.glob("lib/python*/site-packages"))
    (packages / "project-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        tmp_path, env)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = run([str(venv / "bin" / "python"), "-c", "import tastemaker; print(tastemaker.__file__)"], outside, env)
    assert where.stdout.strip().startswith(str(packages)), where.stdout
    version = run([str(venv / "bin" / "tastemaker"), "--version"], outside, env)
    assert version.stdout.strip() == f"tastemaker {__version__}"
    run([str(venv / "bin" / "tastemaker"), "db", "upgrade", "--data-dir", "state"], outside, env)

    port = free_port()
    server = subprocess.Popen([str(venv / "bin" / "tastemaker"), "serve", "--port", str(port), "--data-dir", "state"],
                              cwd=outside, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the installed server did not answer /ping")
    finally:
        server.terminate()
        server.wait(30)
    assert (outside / "state" / "credentials.json").exists()
