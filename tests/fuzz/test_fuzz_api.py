"""Property-based fuzzing of every operation of personalize, personalize-runtime and personalize-events.

Inputs come from botocore's models (tests/fuzz/shapes.py), go over the wire signed but unvalidated
(tests/fuzz/wire.py) to a live server with a seeded world, and every answer is checked by
tests/fuzz/harness.py: no 5xx, only declared or common error codes, what an independent judge finds invalid
is refused, successes fit the output shape, refused calls change nothing, the server stays up.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, note, settings

from tastemaker.api.service_models import OperationInfo, all_operations
from tests.fuzz.conftest import EXAMPLES, OPT_IN
from tests.fuzz.harness import STATS, Fuzzer
from tests.fuzz.shapes import Case, Inputs
from tests.fuzz.world import DESTRUCTIVE_PREFIXES

SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=not OPT_IN,  # CI: the same cases every run; opt-in budgets explore fresh ones
    database=None,
    deadline=timedelta(seconds=30),  # one case: two snapshots, one call, one ping
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
    print_blob=True,
)


# Destructive operations last (deletes at the very end), so the decoys they may destroy serve every other
# operation first.
OPERATIONS = sorted(all_operations(), key=lambda info: (info.name.startswith(DESTRUCTIVE_PREFIXES),
                                                        info.name.startswith("Delete")))


@pytest.mark.parametrize("info", OPERATIONS, ids=lambda info: f"{info.service}:{info.name}")
def test_operation_survives_fuzzing(fuzzer: Fuzzer, info: OperationInfo) -> None:
    inputs = Inputs(fuzzer.world, info)  # the pools as they are now: stable while Hypothesis replays

    @SETTINGS
    @given(case=inputs.cases())
    def fuzz(case: Case) -> None:
        body = case.body()
        note(f"body ({len(body)} bytes): {body[:300]!r}")
        fuzzer.check(info, case)

    try:
        fuzz()
    except BaseException:
        STATS.failed_operations.append(info.name)
        raise
