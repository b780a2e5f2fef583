"""Every `python` and `sh` sample of README.md, examples/README.md and docs/*.md runs green, as written, in a
fresh-clone stand-in with a live server (tests/cli/checkout.py), page by page in order: a sample may build on
the ones above it, as a reader's would. Only `http://127.0.0.1:8080` is replaced by the test server's URL."""

from __future__ import annotations

import subprocess

import pytest

from tests.cli.checkout import Checkout
from tests.docs.samples import DEFAULT_ENDPOINT, Sample, samples

ALL = samples()
# The blocks that are not run, each with its reason in the page; a new one must be added here on purpose.
NOT_RUNNABLE = {s.id for s in ALL if s.not_runnable}
EXPECTED_NOT_RUNNABLE = 7  # + docs/production.md: the replica set-up (systemd, PostgreSQL, S3)


def test_not_runnable_samples_are_few_and_explained() -> None:
    assert len(NOT_RUNNABLE) <= EXPECTED_NOT_RUNNABLE, sorted(NOT_RUNNABLE)
    for sample in ALL:
        if sample.not_runnable is not None:
            assert len(sample.not_runnable) > 20, f"{sample.id}: say why it cannot run"


@pytest.mark.slow
@pytest.mark.parametrize("sample", ALL, ids=lambda s: s.id)
def test_sample_runs_as_written(sample: Sample, checkout: Checkout) -> None:
    if sample.save_as:
        (checkout.root / sample.save_as).write_text(sample.code)
        return
    if sample.not_runnable:
        pytest.skip(f"not runnable: {sample.not_runnable}")
    code = sample.code.replace(DEFAULT_ENDPOINT, checkout.url)
    if sample.language == "python":
        cmd = [str(checkout.bin / "python"), "-c", code]
    else:
        cmd = ["bash", "-e", "-o", "pipefail", "-c", code]
    run = subprocess.run(cmd, cwd=checkout.root, env=checkout.env(aws_keys=True), capture_output=True, text=True,
                         timeout=900, check=False)
    assert run.returncode == 0, (f"{sample.id} exited {run.returncode}\n--- sample\n{sample.code}--- stdout\n"
                                 f"{run.stdout[-4000:]}\n--- stderr\n{run.stderr[-4000:]}")
