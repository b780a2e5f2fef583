"""Resource statuses: one enum of the Personalize wire strings and the transitions each resource kind allows.

`Status` is a StrEnum, so a member *is* its wire string: it compares equal to it, JSON-encodes as it and
is stored as it. `TRANSITIONS[kind][from]` is the set of statuses a resource of that kind may move to;
`store.resources.update` checks every status write against it (`check`) and raises `IllegalTransition`, a
programming error (never a client error), for a move the table does not hold. Rewriting the current
status (a retried job step) is not a move and is always allowed. Kinds without statuses (schemas) and
kinds Tastemaker does not build yet have no entry; any status write to them is refused.

The `latest*Update` records (UpdateCampaign, UpdateRecommender, UpdateSolution, UpdateDataset) carry their
own status with the create lifecycle: a new record starts CREATE PENDING (or ACTIVE when the update is
applied at once), and `check_update` checks a record's moves the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    CREATE_PENDING = "CREATE PENDING"
    CREATE_IN_PROGRESS = "CREATE IN_PROGRESS"
    ACTIVE = "ACTIVE"
    CREATE_FAILED = "CREATE FAILED"
    CREATE_STOPPING = "CREATE STOPPING"
    CREATE_STOPPED = "CREATE STOPPED"
    DELETE_PENDING = "DELETE PENDING"
    DELETE_IN_PROGRESS = "DELETE IN_PROGRESS"
    DELETE_FAILED = "DELETE FAILED"
    STOP_PENDING = "STOP PENDING"
    STOP_IN_PROGRESS = "STOP IN_PROGRESS"
    INACTIVE = "INACTIVE"
    START_PENDING = "START PENDING"
    START_IN_PROGRESS = "START IN_PROGRESS"
    # data deletion jobs use bare states
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


S = Status
# Work not finished yet: refused by deletes, counted by the in-progress quotas.
BUSY: tuple[Status, ...] = (S.CREATE_PENDING, S.CREATE_IN_PROGRESS)

Table = Mapping[Status, frozenset[Status]]


def _table(*moves: tuple[Status, tuple[Status, ...]]) -> dict[Status, frozenset[Status]]:
    out: dict[Status, frozenset[Status]] = {}
    for source, targets in moves:
        out[source] = out.get(source, frozenset()) | frozenset(targets)
    return out


# CREATE PENDING -> CREATE IN_PROGRESS -> ACTIVE | CREATE FAILED. A job that never starts (its worker died
# too often) fails from CREATE PENDING.
_CREATE = (
    (S.CREATE_PENDING, (S.CREATE_IN_PROGRESS, S.CREATE_FAILED)),
    (S.CREATE_IN_PROGRESS, (S.ACTIVE, S.CREATE_FAILED)),
)
# DELETE PENDING -> DELETE IN_PROGRESS -> gone; DELETE FAILED when the delete job fails.
_DELETE = (
    (S.ACTIVE, (S.DELETE_PENDING,)),
    (S.CREATE_FAILED, (S.DELETE_PENDING,)),
    (S.DELETE_PENDING, (S.DELETE_IN_PROGRESS, S.DELETE_FAILED)),
    (S.DELETE_IN_PROGRESS, (S.DELETE_FAILED,)),
)

CREATED_ONLY = _table(*_CREATE)
CREATE_AND_DELETE = _table(*_CREATE, *_DELETE)
# Dataset groups show DELETE PENDING, then are gone (no DELETE IN_PROGRESS).
DATASET_GROUP = _table(*_CREATE, (S.ACTIVE, (S.DELETE_PENDING,)), (S.CREATE_FAILED, (S.DELETE_PENDING,)),
                       (S.DELETE_PENDING, (S.DELETE_FAILED,)))
# Stop: CREATE PENDING -> CREATE STOPPED; CREATE IN_PROGRESS -> CREATE STOPPING -> CREATE STOPPED; no resume.
# Versions have no delete states: they go with their solution. A training that fails while stopping fails.
SOLUTION_VERSION = _table(
    *_CREATE,
    (S.CREATE_PENDING, (S.CREATE_STOPPED,)),
    (S.CREATE_IN_PROGRESS, (S.CREATE_STOPPING,)),
    (S.CREATE_STOPPING, (S.CREATE_STOPPED, S.CREATE_FAILED)),
)
# STOP PENDING -> STOP IN_PROGRESS -> INACTIVE -> START PENDING -> START IN_PROGRESS -> ACTIVE; a failed stop
# leaves it ACTIVE, a failed start INACTIVE. Inactive recommenders may be deleted.
RECOMMENDER = _table(
    *_CREATE, *_DELETE,
    (S.ACTIVE, (S.STOP_PENDING,)),
    (S.STOP_PENDING, (S.STOP_IN_PROGRESS, S.ACTIVE)),
    (S.STOP_IN_PROGRESS, (S.INACTIVE, S.ACTIVE)),
    (S.INACTIVE, (S.START_PENDING, S.DELETE_PENDING)),
    (S.START_PENDING, (S.START_IN_PROGRESS, S.INACTIVE)),
    (S.START_IN_PROGRESS, (S.ACTIVE, S.INACTIVE)),
)
# An UpdateMetricAttribution takes the attribution through the create lifecycle again (ACTIVE -> CREATE PENDING).
METRIC_ATTRIBUTION = _table(*_CREATE, (S.ACTIVE, (S.CREATE_PENDING,)))
# PENDING -> IN_PROGRESS -> COMPLETED | FAILED
DATA_DELETION_JOB = _table((S.PENDING, (S.IN_PROGRESS, S.FAILED)), (S.IN_PROGRESS, (S.COMPLETED, S.FAILED)))

TRANSITIONS: Mapping[str, Table] = {
    "dataset_group": DATASET_GROUP,
    "dataset": CREATE_AND_DELETE,
    "solution": CREATE_AND_DELETE,
    "campaign": CREATE_AND_DELETE,
    "event_tracker": CREATE_AND_DELETE,
    "filter": CREATE_AND_DELETE,
    "solution_version": SOLUTION_VERSION,
    "recommender": RECOMMENDER,
    "dataset_import_job": CREATED_ONLY,
    "dataset_export_job": CREATED_ONLY,
    "batch_inference_job": CREATED_ONLY,
    "batch_segment_job": CREATED_ONLY,
    "metric_attribution": METRIC_ATTRIBUTION,
    "data_deletion_job": DATA_DELETION_JOB,
}

# latest*Update records: a new one starts CREATE PENDING (applied by a job) or ACTIVE (applied at once).
UPDATE_RECORDS = ("latest_campaign_update", "latest_recommender_update", "latest_solution_update",
                  "latest_dataset_update")
UPDATE_STARTS = frozenset({S.CREATE_PENDING, S.ACTIVE})
UPDATE = CREATED_ONLY


_VALUES = frozenset(s.value for s in Status)


class IllegalTransition(Exception):
    """A status write the transition table does not allow: a bug in Tastemaker, not a client error."""


def allowed(kind: str, current: str | None, target: str) -> bool:
    """Whether a resource of `kind` in status `current` may be written with status `target`."""
    if current == target:
        return True
    table = TRANSITIONS.get(kind)
    if table is None or current not in _VALUES or target not in _VALUES:
        return False
    return Status(target) in table.get(Status(current), frozenset())


def check(kind: str, arn: str, current: str | None, target: str) -> Status:
    """The target as a Status, or IllegalTransition when `kind` may not move from `current` to it."""
    if not allowed(kind, current, target):
        raise IllegalTransition(f"{kind} {arn} may not move from {current} to {target}.")
    return Status(target)


def check_update(kind: str, arn: str, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
    """Check the move of a latest*Update record: a new record (another creationDateTime) must start in
    UPDATE_STARTS while no earlier one is still busy; the same record follows the create lifecycle."""
    if not new or new.get("status") is None:
        return
    target = new["status"]
    before = (old or {}).get("status")
    same = old is not None and old.get("creation_date_time") == new.get("creation_date_time")
    if not same or before is None:
        if target not in UPDATE_STARTS or before in BUSY:
            raise IllegalTransition(f"{kind} {arn}: a new {key} may not start {target} (the last one is {before}).")
        return
    if before != target and Status(target) not in UPDATE.get(Status(before), frozenset()):
        raise IllegalTransition(f"{kind} {arn}: {key} may not move from {before} to {target}.")
