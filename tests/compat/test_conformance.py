"""Conformance with botocore's service models, generated from them: every implemented operation's answers to
valid calls are checked field by field against its output shape, and invalid inputs derived from its input
shape (values past max lengths and ranges, outside enums, malformed and unknown ARNs, bad tokens) must be
refused with an error the operation models; a repeated create must be ResourceAlreadyExistsException and a
delete of a resource in use ResourceInUseException. The per-operation result is recorded in docs/api-conformance.json
(run with TASTEMAKER_RECORD_CONFORMANCE=1 to rewrite it), from which `tastemaker coverage` reports the
wire-exact count in docs/api-coverage.md; this test fails when the record is out of date."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import Shape

from tastemaker.api.conformance import CONFORMANCE_FILE, error_problem, output_problems
from tastemaker.api.operations import implemented
from tastemaker.api.service_models import operation_by_name
from tastemaker.cli.local_server import LocalServer
from tests.compat.scenario import Recorder, walk

pytestmark = pytest.mark.slow
SERVICES = ("personalize", "personalize-runtime", "personalize-events", "cloudwatch", "cloudtrail")  # the last two:
# the CloudWatch and CloudTrail read operations of tastemaker.monitoring, on the same port
ABSENT_ARN = "arn:aws:personalize:us-east-1:000000000000:dataset-group/conformance-absent"


def _service_of(operation: str) -> str:
    for service in SERVICES:
        if operation_by_name(service, operation) is not None:
            return service
    raise KeyError(operation)


def mutations(shape: Shape | None, base: dict[str, Any],
              declares_not_found: bool) -> list[tuple[str, dict[str, Any], bool]]:
    """(label, request, must be refused) triples: `base` with one top-level member made invalid by the model's
    own rules. An unknown but well-formed ARN must be refused only where the operation declares
    ResourceNotFoundException; elsewhere (List* filters) an empty page is right, but an error must still be
    one the operation declares."""
    out: list[tuple[str, dict[str, Any], bool]] = []
    if shape is None:
        return out
    for name, member in shape.members.items():  # type: ignore[attr-defined]
        meta = member.metadata
        bad: list[tuple[str, Any]] = []
        if member.type_name == "string":
            if member.enum:
                bad.append(("not in enum", "NOT_A_MODELLED_VALUE"))
            if "max" in meta and meta["max"] <= 10_000:
                bad.append(("longer than max", "a" * (int(meta["max"]) + 1)))
            if meta.get("min", 0) > 0 and name in base:
                bad.append(("shorter than min", ""))
            if name.lower().endswith("arn"):
                bad.append(("not an ARN", "not-an-arn"))
                bad.append(("unknown ARN", ABSENT_ARN))
            if name == "nextToken":
                bad.append(("bad token", "bm90LWEtdG9rZW4="))
        elif member.type_name in ("integer", "long"):
            if "min" in meta:
                bad.append(("below min", int(meta["min"]) - 1))
            if "max" in meta:
                bad.append(("above max", int(meta["max"]) + 1))
        for label, value in bad:
            out.append((f"{name}: {label}", {**base, name: value}, declares_not_found or label != "unknown ARN"))
    return out


def _generic(problem: str) -> str:
    """A problem without the values that change from run to run (names, ARNs, list positions)."""
    return re.sub(r"\[\d+\]", "[]", problem.split(": '")[0].split(" got ")[0])


def conformance(server: LocalServer, import_root: Path, moto_s3: str, bucket: str) -> dict[str, dict[str, Any]]:
    recorder = Recorder()
    clients = {s: recorder.attach(server.client(s)) for s in SERVICES}
    in_use = walk(clients, import_root, recorder, moto_s3, bucket)
    results: dict[str, dict[str, Any]] = {}
    for name in sorted(implemented()):
        results[name] = {"valid_calls": 0, "invalid_calls": 0, "problems": set()}
    for answer in recorder.answers:
        info = operation_by_name(_service_of(answer.operation), answer.operation)
        assert info is not None
        entry = results[answer.operation]
        body = json.loads(answer.body) if answer.body.strip() else {}
        if answer.status < 300:
            entry["valid_calls"] += 1
            entry["problems"].update(_generic(p) for p in output_problems(info.output_shape, body))
        elif (problem := error_problem(info.model, str(body.get("__type", "")))) is not None:
            entry["problems"].add(problem)
    loose = {s: boto3.client(s, endpoint_url=server.url, region_name=server.region,
                             aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
                             config=Config(parameter_validation=False, retries={"max_attempts": 1}))
             for s in SERVICES}
    for operation, base in recorder.requests.items():
        info = operation_by_name(_service_of(operation), operation)
        assert info is not None
        entry = results[operation]
        declares = any(e.name == "ResourceNotFoundException" for e in info.model.error_shapes)
        for label, request, must_refuse in mutations(info.input_shape, base, declares):
            entry["invalid_calls"] += 1
            try:
                getattr(loose[info.service], xform_name(operation))(**request)
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                if (problem := error_problem(info.model, code)) is not None:
                    entry["problems"].add(f"{label}: {problem}")
                continue
            if must_refuse:
                entry["problems"].add(f"{label}: accepted")
    for operation, code in recorder.duplicates.items():  # the same create twice: the name is taken
        results[operation]["invalid_calls"] += 1
        if code != "ResourceAlreadyExistsException":
            results[operation]["problems"].add(f"duplicate name: answered {code or 'success'}, "
                                               "not ResourceAlreadyExistsException")
    for operation, label, code, answered in recorder.refusals:  # the service's own rules, made in the walk
        results[operation]["invalid_calls"] += 1
        if answered != code:
            results[operation]["problems"].add(f"{label}: answered {answered or 'success'}, not {code}")
    for label, (operation, request) in in_use.items():
        _expect(loose["personalize"], operation, request, "ResourceInUseException", f"delete of {label}",
                results[operation])
    out = {}
    for name, entry in results.items():
        problems = sorted(entry["problems"])
        if entry["valid_calls"] == 0:
            problems.insert(0, "no valid call succeeded in the suite")
        out[name] = {"exact": not problems, "valid_calls": entry["valid_calls"] > 0,
                     "invalid_inputs_checked": entry["invalid_calls"], "problems": problems}
    return out


def _expect(client: Any, operation: str, request: dict[str, Any], code: str, label: str,
            entry: dict[str, Any]) -> None:
    """One generated refusal: the call must fail with exactly `code`."""
    entry["invalid_calls"] += 1
    try:
        getattr(client, xform_name(operation))(**request)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != code:
            entry["problems"].add(f"{label}: answered {exc.response['Error']['Code']}, not {code}")
        return
    entry["problems"].add(f"{label}: accepted, not {code}")


def test_every_implemented_operation_against_its_model(server: LocalServer, import_root: Path, moto_s3: str,
                                                       s3_bucket: str) -> None:
    results = conformance(server, import_root, moto_s3, s3_bucket)
    for result in results.values():
        result["invalid_inputs_checked"] = bool(result["invalid_inputs_checked"])
    document = {"generated_by": "tests/compat/test_conformance.py", "operations": results}
    text = json.dumps(document, indent=1, sort_keys=True) + "\n"
    if os.environ.get("TASTEMAKER_RECORD_CONFORMANCE") == "1":
        CONFORMANCE_FILE.write_text(text)
    recorded = json.loads(CONFORMANCE_FILE.read_text()) if CONFORMANCE_FILE.exists() else {}
    assert recorded == document, (
        "docs/api-conformance.json is out of date: run TASTEMAKER_RECORD_CONFORMANCE=1 pytest "
        "tests/compat/test_conformance.py, then tastemaker coverage --output docs/api-coverage.md")
