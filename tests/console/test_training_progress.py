"""A training version's progress: the trainer's stages recorded on the version while it trains (never on the
DescribeSolutionVersion wire), and the line the group page shows for it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from tastemaker.cli.local_server import LocalServer
from tastemaker.console.app import training_line

STAGES = ["reading the datasets", "computing offline metrics", "training the model", "saving the model"]


@pytest.mark.slow
def test_the_trainers_stages_are_recorded_on_the_version(console_server: LocalServer,
                                                         trained: dict[str, Any]) -> None:
    engine = sa.create_engine(f"sqlite:///{console_server.data_dir / 'tastemaker.db'}")
    with engine.connect() as conn:
        body = json.loads(conn.execute(sa.text("SELECT body FROM resources WHERE arn = :a"),
                                       {"a": trained["version"]}).scalar())
    engine.dispose()
    progress = body["progress"]  # the last record: taken once the trainer ended, so every stage is in it
    assert [name for name, _at in progress["stages"]] == STAGES
    starts = [at for _name, at in progress["stages"]]
    assert starts == sorted(starts) and progress["updated_at"] >= starts[-1]
    described = console_server.client("personalize").describe_solution_version(
        solutionVersionArn=trained["version"])["solutionVersion"]
    assert "progress" not in described and "stages" not in json.dumps(described, default=str)


def test_the_group_page_line_for_a_training_version() -> None:
    progress = {"stages": [["reading the datasets", 100.0], ["computing offline metrics", 103.0],
                           ["training the model", 110.0]], "fraction": 0.4}
    assert training_line(progress, 125.0) == (
        "step 3: training the model, 40% of this fit · 15 s in this step, 25 s in all")
    assert training_line({**progress, "fraction": None}, 110.0) == (
        "step 3: training the model · 0 s in this step, 10 s in all")
    assert training_line(None, 1.0) is None and training_line({"stages": []}, 1.0) is None
