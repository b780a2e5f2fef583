"""A batch output's move to its final name is guarded: an owner whose lease is gone publishes nothing.

tastemaker.data.jsonl.publish_file copies the finished file to `<name>.tmp-<random>` and moves it to `<name>`
inside `guard()` (the job's fenced transaction). These check, on a local output folder, that a refusing guard
leaves neither `<name>` nor the temporary copy, that an accepting one replaces `<name>` whole, and that the
temporary copies a killed owner left are removed before the next claim publishes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tastemaker.data.jsonl import publish_file, remove_temporaries


class Refused(Exception):
    """Stands for queue.LeaseLost."""


@contextmanager
def refused() -> Iterator[None]:
    raise Refused()
    yield  # pragma: no cover


def test_refused_guard_publishes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "in.jsonl.out").write_text("the winner's\n")
    local = tmp_path / "mine"
    local.write_text("a stale owner's\n")
    with pytest.raises(Refused):
        publish_file(local, str(out) + "/", "in.jsonl.out", import_roots=[tmp_path], s3_client_factory=lambda: None,
                     guard=refused)
    assert sorted(p.name for p in out.iterdir()) == ["in.jsonl.out"]
    assert (out / "in.jsonl.out").read_text() == "the winner's\n"


def test_accepted_guard_replaces_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    local = tmp_path / "mine"
    local.write_text("line\n" * 1000)
    seen: list[list[str]] = []

    @contextmanager
    def holding() -> Iterator[None]:
        seen.append(sorted(p.name for p in out.iterdir()))  # only the temporary copy before the move
        yield

    publish_file(local, str(out) + "/", "part-00000.csv", import_roots=[tmp_path], s3_client_factory=lambda: None,
                 guard=holding)
    assert len(seen) == 1 and len(seen[0]) == 1 and seen[0][0].startswith("part-00000.csv.tmp-")
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.csv"]
    assert (out / "part-00000.csv").read_text() == "line\n" * 1000


def test_leftover_temporaries_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "in.jsonl.out.tmp-0123456789ab").write_text("half")
    (out / "in.jsonl.out").write_text("whole\n")
    (out / "notes.tmp-mine").write_text("a user's file")
    assert remove_temporaries(str(out) + "/", import_roots=[tmp_path], s3_client_factory=lambda: None) == 1
    assert sorted(p.name for p in out.iterdir()) == ["in.jsonl.out", "notes.tmp-mine"]
