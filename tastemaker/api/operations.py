"""Every module that implements API operations, imported explicitly; each registers its functions with
`@operation` (tastemaker.control.registry) as it is imported. A new operation module is added here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tastemaker.control import (  # noqa: F401 - imported for their @operation registrations
    batch_jobs,
    campaigns,
    data_deletion_jobs,
    dataset_groups,
    datasets,
    event_trackers,
    export_jobs,
    filters,
    import_jobs,
    metric_attributions,
    recipes,
    recommenders,
    schemas,
    solutions,
    tags,
)
from tastemaker.control.registry import INLINE_OPERATIONS, OPERATIONS
from tastemaker.monitoring import audit, cloudwatch  # noqa: F401 - LookupEvents; ListMetrics, GetMetric*
from tastemaker.realtime import events_api  # noqa: F401
from tastemaker.serving import actions, runtime  # noqa: F401


def implemented() -> dict[str, Callable[..., Any]]:
    """Operation name -> its function, for every operation this build implements."""
    return OPERATIONS


def inline_operations() -> set[str]:
    """Operations that may run on the event loop (see tastemaker.realtime.inline)."""
    return INLINE_OPERATIONS
