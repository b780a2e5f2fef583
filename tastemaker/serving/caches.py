"""The serving layer's process-wide state, one typed field each (held by Services.serving).

Every piece is made empty when the process starts and filled on first use; each keeps its own lock and
refresh rules (see the module of each type).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tastemaker.serving.approx import ScorerRegistry
from tastemaker.serving.arms import ArmRouter
from tastemaker.serving.batcher import BatcherRegistry
from tastemaker.serving.candidates import FilterRows
from tastemaker.serving.deployments import DeploymentCache
from tastemaker.serving.history import HistoryStore, TrackerWatch
from tastemaker.serving.models import ModelCache
from tastemaker.serving.snapshots import VersionedCache, VersionWatch


@dataclass(eq=False)
class ServingCaches:
    models: ModelCache = field(default_factory=ModelCache)  # model prefix -> memory-mapped model
    scorers: ScorerRegistry = field(default_factory=ScorerRegistry)  # model prefix -> candidate index
    deployments: DeploymentCache = field(default_factory=DeploymentCache)  # campaign/recommender -> what it serves
    versions: VersionWatch = field(default_factory=VersionWatch)  # (group, dataset type) -> data version
    trackers: TrackerWatch = field(default_factory=TrackerWatch)  # group -> has an event tracker
    histories: HistoryStore = field(default_factory=HistoryStore)  # group -> bulk-imported histories
    catalogs: VersionedCache = field(default_factory=VersionedCache)  # serving catalogues per Items data version
    # next best action's action snapshots and filter catalogues per Actions/Users data version (apart from the
    # item catalogues, whose cache serving.catalog.same_items searches for a catalogue to share)
    actions: VersionedCache = field(default_factory=VersionedCache)
    batchers: BatcherRegistry = field(default_factory=BatcherRegistry)  # per model: request batching
    filters: FilterRows = field(default_factory=FilterRows)  # filter ARN -> its parsed expression
    arms: ArmRouter = field(default_factory=ArmRouter)  # campaign -> comparison arm, served counts
    # (model, interval boundary) -> trending scores refreshed from streamed events
    trending: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
