"""The fuzzer's own checks: snapshot comparison tells a refused call's change from background work."""

from __future__ import annotations

import json

from tests.fuzz.shapes import Case
from tests.fuzz.world import Row, Snapshot, unexplained_changes

GROUP = "arn:aws:personalize:us-east-1:000000000000:dataset-group/g"
OTHER = "arn:aws:personalize:us-east-1:000000000000:dataset-group/h"


def row(kind: str, status: str | None, group: str | None = GROUP, parent: str | None = None,
        updated: float = 1.0, **body: object) -> Row:
    return (kind, status, updated, json.dumps({"status": status, **body}, sort_keys=True), group, parent)


def snap(rows: dict[str, Row], busy: set[str] = frozenset(), events: dict[str, int] | None = None) -> Snapshot:  # type: ignore[assignment]
    return Snapshot(rows, {}, events or {}, {}, frozenset(busy))


def test_a_changed_final_row_is_reported() -> None:
    before = snap({"c": row("campaign", "ACTIVE", min_tps=1)})
    after = snap({"c": row("campaign", "ACTIVE", updated=2.0, min_tps=5)})
    assert unexplained_changes(before, after) == [
        f"c changed its body: ACTIVE {before.rows['c'][3]} -> ACTIVE {after.rows['c'][3]}"]


def test_rows_appearing_or_disappearing_are_reported() -> None:
    before = snap({"a": row("filter", "ACTIVE")})
    assert [c.split(" (")[0] for c in unexplained_changes(before, snap({}))] == ["a disappeared"]
    after = snap({"a": row("filter", "ACTIVE"), "b": row("filter", "ACTIVE", group=OTHER)})
    assert [c.split(" (")[0] for c in unexplained_changes(before, after)] == ["b appeared"]


def test_background_work_in_a_group_is_not_blamed_on_the_call() -> None:
    version = row("solution_version", "CREATE IN_PROGRESS", parent="s")
    before = snap({"s": row("solution", "ACTIVE"), "v": version, "x": row("filter", "ACTIVE", group=OTHER)}, {"v"})
    after = snap({"s": row("solution", "ACTIVE", updated=3.0, latest="v"), "v": row(
        "solution_version", "ACTIVE", parent="s"), "x": row("filter", "ACTIVE", group=OTHER)})
    assert unexplained_changes(before, after) == []
    after.rows["x"] = row("filter", "DELETE PENDING", group=OTHER)
    assert [c.split(":")[0] for c in unexplained_changes(before, after)] == ["x changed its status"]


def test_stored_events_count_as_a_change() -> None:
    before = snap({GROUP: row("dataset_group", "ACTIVE", group=None)}, events={GROUP: 3})
    after = snap({GROUP: row("dataset_group", "ACTIVE", group=None)}, events={GROUP: 4})
    assert unexplained_changes(before, after) == [f"events in {GROUP} changed: 3 -> 4"]


def test_huge_cases_print_short() -> None:
    case = Case("invalid", {"name": "x" * 100_000})
    assert len(repr(case)) < 2000 and len(case.body()) > 100_000
    assert Case("invalid", {"n": 2**70}).body() == b'{"n": 1180591620717411303424}'
