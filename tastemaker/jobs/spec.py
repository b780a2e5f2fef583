"""The training spec: what the server's training job hands the trainer subprocess, typed on both sides.

The parent (tastemaker.jobs.training.build_spec) builds a `TrainingSpec` from a solution version, writes it
with `to_json` next to the training work directory, and starts `python -m tastemaker.jobs.train_process
SPEC.json`; the subprocess reads it back with `from_json`. Data selection is the recipes' own
`TrainingConfig`, already converted (thresholds as floats, eventsConfig as (type, threshold, weight)).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tastemaker.recipes.training_data import TrainingConfig


@dataclass(frozen=True)
class DatasetInput:
    """One dataset of the group: its Avro schema text, schema domain and local Parquet parts."""

    schema: str
    domain: str | None
    parts: tuple[str, ...]


@dataclass(frozen=True)
class TrainingSpec:
    recipe: str | None  # recipe name; None with perform_auto_ml
    out: Path  # the subprocess writes out/result.json and out/model/
    datasets: dict[str, DatasetInput] = field(default_factory=dict)  # by dataset type (Interactions, ...)
    events_part: str | None = None  # streamed events as one more Interactions part
    config: TrainingConfig = field(default_factory=TrainingConfig)
    params: dict[str, str] = field(default_factory=dict)  # hyperparameters and feature transformation
    perform_hpo: bool = False
    hpo: dict[str, Any] = field(default_factory=dict)  # solutionConfig.hpoConfig
    perform_auto_ml: bool = False
    auto_ml_recipes: tuple[str, ...] = ()
    evaluate: bool = True  # trainingMode UPDATE skips the offline evaluation
    seed: int = 0
    spark_master: str | None = None  # with data of at least spark_min_interactions, ALS fits run on Spark
    spark_min_interactions: int = 20_000_000

    def to_json(self) -> str:
        data = asdict(self)
        data["out"] = str(self.out)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> TrainingSpec:
        data = json.loads(text)
        cfg = data["config"]
        config = TrainingConfig(
            event_type=cfg["event_type"], event_value_threshold=cfg["event_value_threshold"],
            events_config=[(e[0], e[1], e[2]) for e in cfg["events_config"]],
            included_columns=cfg["included_columns"], excluded_columns=cfg["excluded_columns"],
            domain_event_type_message=cfg["domain_event_type_message"])
        datasets = {k: DatasetInput(v["schema"], v["domain"], tuple(v["parts"])) for k, v in data["datasets"].items()}
        return cls(recipe=data["recipe"], out=Path(data["out"]), datasets=datasets, events_part=data["events_part"],
                   config=config, params=data["params"], perform_hpo=data["perform_hpo"], hpo=data["hpo"],
                   perform_auto_ml=data["perform_auto_ml"], auto_ml_recipes=tuple(data["auto_ml_recipes"]),
                   evaluate=data["evaluate"], seed=data["seed"], spark_master=data["spark_master"],
                   spark_min_interactions=data["spark_min_interactions"])
