"""Start and stop a `tastemaker serve` subprocess on a free loopback port (tests, benchmarks, quickstart)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """A real server process with a known key; `kill()` is a kill -9, `start()` again restarts it."""

    def __init__(self, data_dir: Path, *, import_roots: Sequence[Path] = (), port: int | None = None,
                 access_key: str = "TMKTESTACCESSKEY0001", secret_key: str = "test-secret-key-not-for-production",
                 region: str = "us-east-1", env: dict[str, str] | None = None, extra_args: Sequence[str] = ()) -> None:
        self.data_dir = Path(data_dir)
        self.import_roots = list(import_roots)
        self.port = port or free_port()
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.env = dict(env or {})
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update({"TASTEMAKER_ACCESS_KEY_ID": self.access_key, "TASTEMAKER_SECRET_ACCESS_KEY": self.secret_key})
        env.update(self.env)
        cmd = [sys.executable, "-m", "tastemaker.cli.main", "serve", "--host", "127.0.0.1", "--port",
               str(self.port), "--data-dir", str(self.data_dir)]
        for root in self.import_roots:
            cmd += ["--import-root", str(root)]
        cmd += self.extra_args
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; log:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout}s; log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no cleanup, exactly like a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, service: str, **kwargs: Any) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120)
        return boto3.client(service, endpoint_url=self.url, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            config=config, **kwargs)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
