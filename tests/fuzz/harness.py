"""One fuzz case against the live server, and the properties every answer must have.

For each case: snapshot the metadata (tastemaker.store, read-only), send the signed request, snapshot again,
then check that

1. the answer is not a 5xx (501 NotImplementedException only for an operation this build does not implement);
2. an error carries an AWS error code the operation's model declares, or a common one (`COMMON_CODES`: what
   any operation may answer, from tastemaker/errors.py and the spec), and, for the REST protocols, the HTTP
   status the model gives that error;
3. a request that an independent judge (tests/fuzz/oracle.py: botocore's client-side validator, the model's
   maximums and enums) finds invalid is refused;
4. a refused call (and any read: Describe/List/Get) changed nothing the background jobs do not explain;
5. a success is a JSON object that fits the output shape (the same judge);
6. the server is alive and answers GET /ping.

`STATS` counts cases, answers and failures for the terminal summary (conftest.py prints it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tastemaker.api.operations import implemented
from tastemaker.api.service_models import OperationInfo
from tastemaker.cli.local_server import LocalServer
from tests.fuzz.oracle import must_refuse
from tests.fuzz.shapes import Case
from tests.fuzz.wire import SignedWire
from tests.fuzz.world import Snapshots, World, unexplained_changes

# Codes any operation may answer besides the ones its model declares: request validation against the model
# (InvalidInputException, the Personalize name for it, and the generic ValidationException), a body that is not
# a JSON object (SerializationException, as AWS answers it), a body too large to read (413), and throttling.
# Authentication errors are not here: the fuzzer signs every request correctly.
COMMON_CODES = frozenset({"InvalidInputException", "ValidationException", "SerializationException",
                          "RequestEntityTooLargeException", "ThrottlingException"})
READ_PREFIXES = ("Describe", "List", "Get")


@dataclass
class Stats:
    cases: int = 0
    by_mode: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str, int, str]] = field(default_factory=Counter)  # (operation, mode, status, code)
    messages: dict[tuple[str, str, int, str], str] = field(default_factory=dict)  # the first message of each
    operations: set[str] = field(default_factory=set)
    closed_unanswered: int = 0  # oversized bodies the server stopped reading and closed on before we saw a 413
    failed_operations: list[str] = field(default_factory=list)


STATS = Stats()


def declared_errors(info: OperationInfo) -> dict[str, int | None]:
    """Error code -> the HTTP status the model gives it (None when the model gives none)."""
    out: dict[str, int | None] = {}
    for shape in info.model.error_shapes:
        error = shape.metadata.get("error") or {}
        out[shape.name] = error.get("httpStatusCode")
    return out


def _arns_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value} if value.startswith("arn:") and len(value) <= 256 else set()
    if isinstance(value, dict):
        return set().union(*(_arns_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_arns_in(v) for v in value)) if value else set()
    return set()


class Fuzzer:
    """Sends cases to one server and checks the properties (raises AssertionError naming the first broken)."""

    def __init__(self, server: LocalServer, world: World, snapshots: Snapshots) -> None:
        self.server = server
        self.world = world
        self.snapshots = snapshots
        self.wire = SignedWire("127.0.0.1", server.port, server.access_key, server.secret_key, server.region)
        self.implemented = set(implemented())

    def check(self, info: OperationInfo, case: Case) -> None:
        STATS.cases += 1
        STATS.by_mode[case.mode] += 1
        STATS.operations.add(info.name)
        events = info.service == "personalize-events"
        named = _arns_in(case.params)  # tags change only through the ARNs a request names
        before = self.snapshots.take(named, with_events=events)
        answer = self.wire.send(info, case.body())
        after = self.snapshots.take(named, with_events=events)
        STATS.by_status[answer.status] += 1
        STATS.closed_unanswered += int(answer.status == 413 and not answer.raw)
        outcome = (info.name, case.mode, answer.status, answer.code or "")
        STATS.outcomes[outcome] += 1
        if answer.code and outcome not in STATS.messages and isinstance(answer.body, dict):
            STATS.messages[outcome] = str(answer.body.get("message", ""))[:160]
        what = f"{info.name} ({case.mode}) answered {answer.status} {answer.code}: {str(answer.body)[:400]}"

        alive = self.server.process is not None and self.server.process.poll() is None
        assert alive, f"the server died after {what}\n{self.server.log_tail()}"
        assert self.wire.ping() == 200, f"the server stopped answering /ping after {what}"
        if answer.status == 501:
            assert answer.code == "NotImplementedException" and info.name not in self.implemented, what
        else:
            assert answer.status < 500, f"server error: {what}\n{self.server.log_tail(30)}"
        if answer.status >= 400 and answer.status != 501:
            declared = declared_errors(info)
            assert answer.code in declared or answer.code in COMMON_CODES, (
                f"undeclared error code: {what}; {info.name} declares {sorted(declared)}")
            expected = declared.get(answer.code or "")
            if info.protocol == "rest-json" and expected is not None:
                assert answer.status == expected, f"{answer.code} should be HTTP {expected}: {what}"
        refused = answer.status >= 400
        if case.raw is None and not refused:
            reasons = must_refuse(info.input_shape, case.params)
            assert not reasons, f"accepted a request it must refuse: {what}; why: {'; '.join(reasons[:5])}"
        if refused or info.name.startswith(READ_PREFIXES):
            changes = unexplained_changes(before, after)
            assert not changes, f"{what}\nyet the state changed:\n  " + "\n  ".join(changes[:10])
        if not refused:
            assert isinstance(answer.body, dict), f"a success that is not a JSON object: {what}"
            wrong = must_refuse(info.output_shape, answer.body) if info.output_shape is not None else []
            assert not wrong, f"an answer that does not fit the output shape: {what}; {'; '.join(wrong[:5])}"
            if info.name.startswith("Create"):
                self.world.note_created(answer.body)

    def close(self) -> None:
        self.wire.close()
