"""Actions and Action_Interactions tables -> integer-coded arrays for the next-best-action recipe.

Actions metadata carries the reserved fields Personalize applies automatically: VALUE (ties between equal
propensities go to the higher value), EXPIRATION_TIMESTAMP (epoch seconds; an expired action is never
recommended) and REPEAT_FREQUENCY (days; an action the user TOOK within that many days is not recommended
again). Action interactions are labelled events: TAKEN is a positive, NOT_TAKEN a negative and VIEWED a weak
negative (shown, not taken). Event types are normalised so the bulk spelling (`NOT_TAKEN`) and the
PutActionInteractions spelling (`Not Taken`) mean the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

TAKEN, NOT_TAKEN, VIEWED, OTHER = 0, 1, 2, 3
EVENT_CODES = {"TAKEN": TAKEN, "NOT_TAKEN": NOT_TAKEN, "VIEWED": VIEWED}
SECONDS_PER_DAY = 86_400


def event_code(event_type: str | None) -> int:
    """TAKEN / NOT_TAKEN / VIEWED code of an event type in any of Personalize's spellings (OTHER if none)."""
    key = str(event_type or "").strip().upper().replace(" ", "_")
    return EVENT_CODES.get(key, OTHER)


@dataclass
class ActionCatalog:
    """The Actions dataset: ids with their reserved fields (NaN / -1 when absent)."""

    action_ids: np.ndarray  # str (n_actions,)
    value: np.ndarray  # float32, NaN = none
    expiration: np.ndarray  # int64 epoch seconds, -1 = never
    repeat_days: np.ndarray  # float32 days, NaN = no repeat limit

    @property
    def n_actions(self) -> int:
        return len(self.action_ids)

    @classmethod
    def from_table(cls, table: pa.Table) -> ActionCatalog:
        ids = table.column("ACTION_ID").cast(pa.string()).to_numpy(zero_copy_only=False).astype(str)
        return cls(
            action_ids=ids,
            value=_floats(table, "VALUE"),
            expiration=np.nan_to_num(_floats(table, "EXPIRATION_TIMESTAMP", np.float64), nan=-1).astype(np.int64),
            repeat_days=_floats(table, "REPEAT_FREQUENCY"),
        )

    def available(self, now: float) -> np.ndarray:
        """Actions not past their expiration at `now` (bool over the catalogue)."""
        return (self.expiration < 0) | (self.expiration > now)


@dataclass
class ActionData:
    """Actions plus their labelled interactions, sorted by (user, timestamp); users are strings here because
    action interactions may come from users without item interactions."""

    catalog: ActionCatalog
    user_ids: np.ndarray  # str (n,)
    actions: np.ndarray  # int32 (n,) index into catalog (interactions with unknown actions are dropped)
    codes: np.ndarray  # int8 (n,) TAKEN / NOT_TAKEN / VIEWED / OTHER
    timestamps: np.ndarray  # int64 (n,)

    @property
    def n_interactions(self) -> int:
        return len(self.actions)

    @classmethod
    def from_tables(cls, actions: pa.Table, interactions: pa.Table | None) -> ActionData:
        catalog = ActionCatalog.from_table(actions)
        if interactions is None or interactions.num_rows == 0:
            empty = np.zeros(0, np.int64)
            return cls(catalog, np.zeros(0, "<U1"), empty.astype(np.int32), empty.astype(np.int8), empty)
        users = interactions.column("USER_ID").cast(pa.string()).fill_null("").to_numpy(zero_copy_only=False)
        ids = interactions.column("ACTION_ID").cast(pa.string()).to_numpy(zero_copy_only=False).astype(str)
        kinds = interactions.column("EVENT_TYPE").cast(pa.string()).to_pylist()
        stamps = interactions.column("TIMESTAMP").cast(pa.int64()).fill_null(0).to_numpy().astype(np.int64)
        order = np.argsort(catalog.action_ids, kind="stable")
        pos = np.minimum(np.searchsorted(catalog.action_ids[order], ids), max(catalog.n_actions - 1, 0))
        known = (catalog.action_ids[order][pos] == ids) if catalog.n_actions else np.zeros(len(ids), bool)
        users = users.astype(str)
        keep = known & (users != "")
        codes = np.fromiter((event_code(k) for k in kinds), np.int8, count=len(kinds))
        users, action_index, codes, stamps = users[keep], order[pos[keep]], codes[keep], stamps[keep]
        sort = np.lexsort((stamps, users))
        return cls(catalog, users[sort], action_index[sort].astype(np.int32), codes[sort], stamps[sort])


def _floats(table: pa.Table, name: str, dtype: type = np.float32) -> np.ndarray:
    column = next((c for c in table.column_names if c.upper() == name), None)
    if column is None:
        return np.full(table.num_rows, np.nan, dtype)
    return table.column(column).cast(pa.float64()).fill_null(float("nan")).to_numpy().astype(dtype)
