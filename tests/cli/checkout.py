"""A stand-in for a user's fresh clone after `make run`: a folder with `.venv/bin/{python,tastemaker}`, links to
the repository's examples/, docs/ and bench/, and a server whose data directory is the folder's `.tastemaker`
(so its key is generated on first start and read from `.tastemaker/credentials.json`, as a user's is).

The one difference from a user's machine: the server listens on a free port, not 8080 (other tests and other
people share this machine), and `TASTEMAKER_ENDPOINT` points at it; `url` says where.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tastemaker.cli.local_server import LocalServer

REPO = Path(__file__).resolve().parents[2]


class Checkout:
    """The folder, its server and the environment a user's shell would have there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / ".venv" / "bin"
        self.server = LocalServer(root / ".tastemaker",
                                  env={"TASTEMAKER_ACCESS_KEY_ID": "", "TASTEMAKER_SECRET_ACCESS_KEY": ""})

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> Checkout:
        self.bin.mkdir(parents=True, exist_ok=True)
        for name in ("examples", "docs", "bench"):
            link = self.root / name
            if not link.exists():
                link.symlink_to(REPO / name)
        # Shell shims, not symlinks: a venv's python finds its site-packages through the path it was started as.
        self._shim("python", f'exec {sys.executable} "$@"')
        self._shim("tastemaker", f'exec {sys.executable} -m tastemaker.cli.main "$@"')
        self.server.start()
        key = json.loads((self.server.data_dir / "credentials.json").read_text())["keys"][0]
        self.server.access_key, self.server.secret_key = key["access_key_id"], key["secret_access_key"]
        return self

    def stop(self) -> None:
        self.server.stop()

    def _shim(self, name: str, line: str) -> None:
        path = self.bin / name
        path.write_text(f"#!/bin/sh\n{line}\n")
        path.chmod(0o755)

    def env(self, *, aws_keys: bool) -> dict[str, str]:
        """A user's shell in the checkout: `.venv/bin` and the AWS CLI on PATH, no TASTEMAKER_* key, a HOME
        without ~/.aws; with `aws_keys` the root key in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (as after
        `aws configure`), otherwise no AWS key at all."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TASTEMAKER_", "AWS_"))}
        env.update(PATH=os.pathsep.join([str(self.bin), str(Path(sys.executable).parent), os.environ["PATH"]]),
                   HOME=str(self.root / "home"), TASTEMAKER_ENDPOINT=self.url, AWS_PAGER="",
                   PYTHONPATH=os.pathsep.join(p for p in [str(REPO), os.environ.get("PYTHONPATH", "")] if p))
        (self.root / "home").mkdir(exist_ok=True)
        if aws_keys:
            env.update(AWS_ACCESS_KEY_ID=self.server.access_key, AWS_SECRET_ACCESS_KEY=self.server.secret_key,
                       AWS_DEFAULT_REGION="us-east-1")
        return env
