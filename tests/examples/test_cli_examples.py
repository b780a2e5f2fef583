"""The AWS CLI examples name real commands and options of the botocore models, and are valid bash."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

from tastemaker.cli.sample_data import generate
from tests.cli.checkout import Checkout

CLI_DIR = Path(__file__).resolve().parents[2] / "examples" / "cli"
SCRIPTS = sorted(CLI_DIR.glob("*.sh"))
GLOBAL_OPTIONS = {"endpoint-url", "query", "output", "region", "profile", "no-cli-pager", "debug"}
COMMAND = re.compile(r"\baws (personalize(?:-runtime|-events)?) ([a-z][a-z-]*)")


def commands() -> list[tuple[str, str, str, list[str]]]:
    """(script, service, command, options) of every `aws ...` call, line continuations joined; a call's options
    run up to the next `aws` call on the same line. `gone describe-x ...` (07_cleanup.sh) calls aws personalize."""
    found = []
    for script in SCRIPTS:
        for line in script.read_text().replace("\\\n", " ").splitlines():
            line = re.sub(r"^\s*gone ", "aws personalize ", line)
            matches = list(COMMAND.finditer(line))
            for k, match in enumerate(matches):
                tail = line[match.end(): matches[k + 1].start() if k + 1 < len(matches) else len(line)]
                options = re.findall(r"(?:^|\s)--([a-z-]+)", tail)
                found.append((script.name, match.group(1), match.group(2), options))
    return found


def model_commands(service: str) -> dict[str, set[str]]:
    model = botocore.session.get_session().get_service_model(service)
    result = {}
    for name in model.operation_names:
        members = model.operation_model(name).input_shape.members
        options = {xform_name(m, "-") for m in members}
        for member, shape in members.items():  # booleans also have a --no- form
            if shape.type_name == "boolean":
                options.add("no-" + xform_name(member, "-"))
        result[xform_name(name, "-")] = options
    return result


def test_every_step_has_a_script_and_every_script_calls_the_cli() -> None:
    names = " ".join(s.name for s in SCRIPTS)
    for word in ("dataset_group", "import", "train", "campaign", "events", "monitor", "cleanup"):
        assert word in names
    per_script = {name for name, *_ in commands()}
    assert per_script == {s.name for s in SCRIPTS if s.name != "env.sh"}


@pytest.mark.parametrize("entry", commands(), ids=lambda e: f"{e[0]}:{e[2]}")
def test_command_and_options_exist_in_the_botocore_model(entry: tuple[str, str, str, list[str]]) -> None:
    script, service, command, options = entry
    known = model_commands(service)
    assert command in known, f"{script}: aws {service} {command} is not an operation of {service}"
    unknown = [o for o in options if o not in known[command] | GLOBAL_OPTIONS]
    assert not unknown, f"{script}: aws {service} {command} has no option(s) {unknown}"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_scripts_parse_as_bash(script: Path) -> None:
    run = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr


@pytest.mark.slow
def test_scripts_run_in_order_against_a_live_server(tmp_path: Path) -> None:
    """01 .. 07 exactly as a reader runs them from the clone: `bash examples/cli/0N_....sh`, with no AWS_* or
    TASTEMAKER_* key in the environment and no ~/.aws (env.sh finds .tastemaker/credentials.json), each exits 0
    against a live server (the AWS CLI from the dev extra)."""
    aws_dir = Path(sys.executable).parent
    if shutil.which("aws", path=os.pathsep.join([str(aws_dir), os.environ.get("PATH", "")])) is None:
        pytest.skip("the AWS CLI is not installed (pip install awscli, or the dev extra)")
    checkout = Checkout(tmp_path).start()
    try:
        data = (checkout.root / ".tastemaker" / "imports" / "sample").resolve()  # an import root on every server
        generate(data, users=60, items=40, interactions=1200)
        env = checkout.env(aws_keys=False)
        for script in [s for s in SCRIPTS if s.name != "env.sh"]:
            args = ["bash", f"examples/cli/{script.name}"] + ([str(data)] if script.name.startswith("02_") else [])
            run = subprocess.run(args, cwd=checkout.root, env=env, capture_output=True, text=True,
                                 timeout=300, check=False)
            assert run.returncode == 0, f"{script.name} exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
            if script.name.startswith(("04_", "05_")):  # GetRecommendations answered with real items
                assert '"itemId": "item' in run.stdout, run.stdout
    finally:
        checkout.stop()
