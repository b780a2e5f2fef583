"""Deleting erases: the streamed events and real-time state that a deleted dataset or dataset group owned.

What each delete owns (Personalize): events recorded through an event tracker belong to the group's
Interactions dataset, so DeleteEventTracker erases nothing (the tracker only stops accepting events);
DeleteDataset of the Interactions dataset erases the group's streamed events and its real-time state;
DeleteDataset of an Action_Interactions dataset erases the action interactions stored under its ARN;
DeleteDatasetGroup erases whatever of the group is left. A later resource with the same name (same ARN)
starts empty. Rows go in bounded transactions (store.events.erase_partition); Redis keys by SCAN, in
bounded steps; this process's caches at once, other processes' when they see the group's tracker change
(tastemaker.serving.history).
"""

from __future__ import annotations

import logging

from tastemaker.control.context import Services
from tastemaker.realtime.state import get_state
from tastemaker.store import events
from tastemaker.store.resources import Resource

log = logging.getLogger("tastemaker.realtime")


def erase_for_resource(services: Services, resource: Resource) -> int:
    """Erase what `resource` (being deleted) owns of the events table and real-time state; rows erased."""
    partition, group = _owned(resource)
    if partition is None:
        return 0
    erased = events.erase_partition(services.engine, partition)
    if group is not None:
        get_state(services).erase_group(group)
    if erased:
        log.info("erased %d streamed events of %s", erased, resource.arn)
    return erased


def _owned(resource: Resource) -> tuple[str | None, str | None]:
    """(events partition, dataset group whose real-time state goes with it) of a resource being deleted."""
    if resource.kind == "dataset_group":
        return resource.arn, resource.arn
    if resource.kind == "dataset":
        dataset_type = str(resource.body.get("dataset_type", "")).upper()
        if dataset_type == "INTERACTIONS" and resource.dataset_group_arn:
            return resource.dataset_group_arn, resource.dataset_group_arn
        if dataset_type == "ACTION_INTERACTIONS":
            return resource.arn, None
    return None, None
