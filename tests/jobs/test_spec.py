"""The training spec crosses the subprocess boundary as JSON and comes back the same typed value."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tastemaker.jobs.spec import DatasetInput, TrainingSpec
from tastemaker.recipes.training_data import TrainingConfig


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    spec = TrainingSpec(
        recipe="aws-user-personalization", out=tmp_path / "out",
        datasets={"Interactions": DatasetInput('{"type": "record"}', None, ("/a/1.parquet", "/a/2.parquet")),
                  "Items": DatasetInput('{"type": "record"}', "ECOMMERCE", ())},
        events_part="/w/events.parquet",
        config=TrainingConfig(event_type="click", event_value_threshold=0.5,
                              events_config=[("click", None, 1.0), ("buy", 2.0, 3.0)],
                              included_columns={"Items": ["GENRE"]}, excluded_columns={"Users": ["AGE"]},
                              domain_event_type_message=True),
        params={"hidden_dimension": "64"}, perform_hpo=True,
        hpo={"hpo_resource_config": {"max_number_of_training_jobs": "4"}},
        perform_auto_ml=True, auto_ml_recipes=("aws-user-personalization", "aws-similar-items"),
        evaluate=False, seed=7)
    back = TrainingSpec.from_json(spec.to_json())
    assert back == spec
    assert isinstance(back.out, Path) and isinstance(back.datasets["Items"], DatasetInput)
    assert back.config.column_allowed("Items", "genre") and not back.config.column_allowed("Users", "AGE")


def test_defaults_round_trip_and_the_spec_is_frozen(tmp_path: Path) -> None:
    spec = TrainingSpec(recipe=None, out=tmp_path)
    assert TrainingSpec.from_json(spec.to_json()) == spec
    changed = replace(spec, config=replace(spec.config, domain_event_type_message=True))
    assert changed.config.domain_event_type_message and not spec.config.domain_event_type_message
