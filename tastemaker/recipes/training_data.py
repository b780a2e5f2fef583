"""Interactions/Items/Users tables -> integer-coded training arrays with Personalize's filtering rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from tastemaker.data.schemas import Schema

if TYPE_CHECKING:
    from tastemaker.recipes.action_data import ActionData

MIN_INTERACTIONS = 1000
MIN_USERS_WITH_TWO = 25
RESERVED_ITEM_COLUMNS = {"ITEM_ID", "CREATION_TIMESTAMP"}
RESERVED_USER_COLUMNS = {"USER_ID"}
# A string column without a schema is treated as text (not categorical) when its values are this long on average.
_TEXT_MEAN_LENGTH = 40


class InsufficientDataError(Exception):
    """Training data does not meet Personalize's minimum (the message is the failureReason)."""


@dataclass
class TrainingConfig:
    """Solution-level data selection: eventType, eventValueThreshold, eventsConfig and column choices."""

    event_type: str | None = None
    event_value_threshold: float | None = None
    events_config: list[tuple[str, float | None, float]] = field(default_factory=list)
    included_columns: dict[str, list[str]] = field(default_factory=dict)  # dataset type -> columns
    excluded_columns: dict[str, list[str]] = field(default_factory=dict)
    # Domain recommenders phrase the minimum-data failure with the event type they train on.
    domain_event_type_message: bool = False

    def column_allowed(self, dataset_type: str, column: str) -> bool:
        def matching(mapping: dict[str, list[str]]) -> list[str] | None:
            for key, columns in mapping.items():
                if key.lower() == dataset_type.lower():
                    return [c.upper() for c in columns]
            return None

        included = matching(self.included_columns)
        excluded = matching(self.excluded_columns) or []
        if included is not None and column.upper() not in included:
            return False
        return column.upper() not in excluded


@dataclass
class Metadata:
    """Metadata aligned with a catalogue (items or users): one row per catalogue entry."""

    categorical: dict[str, tuple[sp.csr_matrix, np.ndarray]] = field(default_factory=dict)  # multi-hot, values
    numeric: dict[str, np.ndarray] = field(default_factory=dict)  # float32, NaN = missing
    textual: dict[str, np.ndarray] = field(default_factory=dict)  # str, "" = missing
    item_name_column: str | None = None
    creation_timestamp: np.ndarray | None = None  # int64, -1 = missing (items only)

    @property
    def columns(self) -> list[str]:
        return [*self.categorical, *self.numeric, *self.textual]


@dataclass
class TrainingData:
    """Integer-coded interactions, sorted by (user, timestamp), plus the catalogues and aligned metadata."""

    user_ids: np.ndarray  # str (n_users,) users with at least one kept interaction
    item_ids: np.ndarray  # str (n_items,) items from interactions ∪ Items dataset
    users: np.ndarray  # int32 (n,)
    items: np.ndarray  # int32 (n,)
    timestamps: np.ndarray  # int64 (n,)
    weights: np.ndarray  # float32 (n,)
    event_types: np.ndarray  # int16 (n,) codes into event_type_names, -1 = none
    event_type_names: list[str]
    event_values: np.ndarray  # float32 (n,), NaN = none
    item_metadata: Metadata | None = None
    user_metadata: Metadata | None = None
    config: TrainingConfig = field(default_factory=TrainingConfig)
    has_event_weights: bool = False
    actions: ActionData | None = None  # Actions + Action_Interactions, for aws-next-best-action

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return len(self.users)

    @classmethod
    def from_tables(
        cls,
        interactions: pa.Table,
        items: pa.Table | None,
        users: pa.Table | None,
        config: TrainingConfig,
        *,
        item_schema: Schema | None = None,
        user_schema: Schema | None = None,
        check_minimum: bool = True,
    ) -> TrainingData:
        n_raw = interactions.num_rows
        keep, weights, has_weights = _select_events(interactions, config)
        table = interactions.filter(pa.array(keep)) if not keep.all() else interactions
        weights = weights[keep]
        user_codes, user_ids = _encode(table.column("USER_ID"))
        item_codes, interaction_item_ids = _encode(table.column("ITEM_ID"))
        # Catalogue: interacted items first (codes stay stable), then items only in the Items dataset.
        item_ids = interaction_item_ids
        if items is not None and items.num_rows and "ITEM_ID" in items.column_names:
            extra = pc.unique(items.column("ITEM_ID").cast(pa.string())).to_numpy(zero_copy_only=False)
            extra = extra[~np.isin(extra, interaction_item_ids)]
            if extra.size:
                item_ids = np.concatenate([interaction_item_ids, np.sort(extra.astype(str))])
        timestamps = _int_column(table, "TIMESTAMP")
        event_type_codes, event_type_names = _event_types(table)
        event_values = _float_column(table, "EVENT_VALUE")
        order = np.lexsort((timestamps, user_codes))
        data = cls(
            user_ids=user_ids,
            item_ids=item_ids.astype(str),
            users=user_codes[order],
            items=item_codes[order],
            timestamps=timestamps[order],
            weights=weights[order].astype(np.float32),
            event_types=event_type_codes[order],
            event_type_names=event_type_names,
            event_values=event_values[order],
            config=config,
            has_event_weights=has_weights,
        )
        if check_minimum:
            data.check_minimum(n_raw)
        if items is not None and items.num_rows:
            data.item_metadata = _metadata(items, "ITEM_ID", data.item_ids, item_schema, config, "Items")
        if users is not None and users.num_rows:
            data.user_metadata = _metadata(users, "USER_ID", data.user_ids, user_schema, config, "Users")
        return data

    def check_minimum(self, n_raw: int | None = None) -> None:
        """Personalize's minimum: >= 1000 interactions after filtering, >= 25 users with >= 2 each (and >= 1%)."""
        if self.n_interactions < MIN_INTERACTIONS:
            if self.config.domain_event_type_message and self.config.event_type:
                raise InsufficientDataError(
                    f"Dataset has fewer than {MIN_INTERACTIONS} interactions after filtering by event type: "
                    f"{self.config.event_type}"
                )
            raise InsufficientDataError(
                f"Create failed. Dataset has fewer than {MIN_INTERACTIONS} interactions"
                + (" after filtering by event type/value" if n_raw is not None and n_raw >= MIN_INTERACTIONS else "")
                + f" (found {self.n_interactions})."
            )
        per_user = np.bincount(self.users, minlength=self.n_users)
        with_two = int((per_user >= 2).sum())
        if with_two < MIN_USERS_WITH_TWO or with_two < 0.01 * self.n_users:
            raise InsufficientDataError(
                f"Create failed. Dataset has fewer than {MIN_USERS_WITH_TWO} users with at least 2 interactions each."
            )

    # --- derived views -------------------------------------------------------------------------
    def user_item_matrix(self, values: np.ndarray | None = None, binary: bool = False) -> sp.csr_matrix:
        """(n_users, n_items) CSR summing `values` (default: weights) over repeated events."""
        data = np.ones(self.n_interactions, np.float32) if binary else (self.weights if values is None else values)
        mat = sp.csr_matrix(
            (np.asarray(data, np.float32), (self.users, self.items)), shape=(self.n_users, self.n_items)
        )
        mat.sum_duplicates()
        if binary:
            mat.data[:] = 1.0
        return mat

    def user_offsets(self) -> np.ndarray:
        """indptr over the (user, timestamp)-sorted events: user u's events are [off[u], off[u+1])."""
        return np.concatenate([[0], np.cumsum(np.bincount(self.users, minlength=self.n_users))]).astype(np.int64)

    def item_first_seen(self) -> np.ndarray:
        """Earliest interaction per item, or CREATION_TIMESTAMP when known and earlier; -1 when neither."""
        first = np.full(self.n_items, np.iinfo(np.int64).max, dtype=np.int64)
        if self.n_interactions:
            np.minimum.at(first, self.items, self.timestamps)
        if self.item_metadata is not None and self.item_metadata.creation_timestamp is not None:
            created = self.item_metadata.creation_timestamp
            first = np.where(created >= 0, np.minimum(first, created), first)
        return np.where(first == np.iinfo(np.int64).max, -1, first)

    def unique_user_counts(self) -> np.ndarray:
        """float32 (n_items,): number of distinct users who interacted with each item."""
        if not self.n_interactions:
            return np.zeros(self.n_items, np.float32)
        pairs = distinct(self.users.astype(np.int64) * self.n_items + self.items)
        return np.bincount(pairs % self.n_items, minlength=self.n_items).astype(np.float32)

    def subset_users(self, user_mask: np.ndarray) -> TrainingData:
        """The same catalogues, keeping only events of users where user_mask is true (user codes kept)."""
        keep = user_mask[self.users]
        return self.subset_events(keep)

    def subset_events(self, keep: np.ndarray) -> TrainingData:
        return TrainingData(
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            users=self.users[keep],
            items=self.items[keep],
            timestamps=self.timestamps[keep],
            weights=self.weights[keep],
            event_types=self.event_types[keep],
            event_type_names=self.event_type_names,
            event_values=self.event_values[keep],
            item_metadata=self.item_metadata,
            user_metadata=self.user_metadata,
            config=self.config,
            has_event_weights=self.has_event_weights,
            actions=self.actions,
        )


def distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values (np.unique) by one sort and a comparison of neighbours. numpy 2.4's
    np.unique took 10.5 s of CPU on 6M int64 where np.sort takes 0.07 s, and the training path calls it
    on every interaction several times (bench/train_scale.py at 6M interactions)."""
    ordered = np.sort(np.asarray(values))
    if ordered.size < 2:
        return ordered
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _encode(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(int32 codes, str ids) via pyarrow dictionary encoding (vectorised; scales to tens of millions of rows)."""
    encoded = pc.dictionary_encode(column.cast(pa.string())).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    ids = encoded.dictionary.to_numpy(zero_copy_only=False).astype(str)
    return codes, ids


def _int_column(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.zeros(table.num_rows, np.int64)
    col = table.column(name).cast(pa.int64())
    return col.fill_null(0).to_numpy().astype(np.int64)


def _float_column(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan, np.float32)
    col = table.column(name).cast(pa.float32())
    return col.fill_null(float("nan")).to_numpy().astype(np.float32)


def _event_types(table: pa.Table) -> tuple[np.ndarray, list[str]]:
    if "EVENT_TYPE" not in table.column_names:
        return np.full(table.num_rows, -1, np.int16), []
    encoded = pc.dictionary_encode(table.column("EVENT_TYPE").cast(pa.string())).combine_chunks()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int16)
    return codes, [str(v) for v in encoded.dictionary.to_pylist()]


def _select_events(table: pa.Table, config: TrainingConfig) -> tuple[np.ndarray, np.ndarray, bool]:
    """Mask of kept events and their weights under eventType / eventValueThreshold / eventsConfig."""
    n = table.num_rows
    types = table.column("EVENT_TYPE").cast(pa.string()) if "EVENT_TYPE" in table.column_names else None

    def is_type(event_type: str) -> np.ndarray:
        if types is None:
            return np.zeros(n, dtype=bool)
        return pc.equal(types, event_type).fill_null(False).to_numpy(zero_copy_only=False).astype(bool)

    values = _float_column(table, "EVENT_VALUE")
    keep = np.ones(n, dtype=bool)
    weights = np.ones(n, dtype=np.float32)
    if config.event_type is not None:
        keep &= is_type(config.event_type)
    if config.event_value_threshold is not None:
        keep &= np.nan_to_num(values, nan=-np.inf) >= config.event_value_threshold
    if not config.events_config:
        return keep, weights, False
    # eventsConfig: only the listed event types train, each with its weight and optional value threshold.
    listed = np.zeros(n, dtype=bool)
    for event_type, threshold, weight in config.events_config:
        match = is_type(event_type)
        if threshold is not None:
            match &= np.nan_to_num(values, nan=-np.inf) >= threshold
        weights = np.where(match, np.float32(weight), weights)
        listed |= match
    return keep & listed, weights, True


def _metadata(
    table: pa.Table, id_column: str, catalogue: np.ndarray, schema: Schema | None, config: TrainingConfig,
    dataset_type: str,
) -> Metadata:
    """Metadata columns aligned with `catalogue` (rows for unknown ids dropped; the last row per id wins)."""
    ids = table.column(id_column).cast(pa.string()).to_numpy(zero_copy_only=False).astype(str)
    order = np.argsort(catalogue, kind="stable")
    pos = np.searchsorted(catalogue[order], ids)
    pos = np.minimum(pos, max(len(catalogue) - 1, 0))
    found = catalogue[order][pos] == ids if len(catalogue) else np.zeros(len(ids), bool)
    rows = np.nonzero(found)[0]
    target = order[pos[found]]
    # The last record per id wins (later imports replace earlier ones).
    _, last = np.unique(target[::-1], return_index=True)
    rows, target = rows[::-1][last], target[::-1][last]
    n = len(catalogue)
    meta = Metadata()
    reserved = RESERVED_ITEM_COLUMNS if dataset_type == "Items" else RESERVED_USER_COLUMNS
    if dataset_type == "Items" and "CREATION_TIMESTAMP" in table.column_names:
        created = np.full(n, -1, np.int64)
        col = table.column("CREATION_TIMESTAMP").cast(pa.int64()).fill_null(-1).to_numpy()
        created[target] = col[rows]
        meta.creation_timestamp = created
    for name in table.column_names:
        if name.upper() in reserved or not config.column_allowed(dataset_type, name):
            continue
        column = table.column(name)
        schema_field = schema.field(name) if schema is not None else None
        if schema_field is not None and schema_field.item_name:
            meta.item_name_column = name
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type):
            values = np.full(n, np.nan, np.float32)
            values[target] = column.cast(pa.float32()).fill_null(float("nan")).to_numpy()[rows]
            meta.numeric[name] = values
            continue
        strings = column.cast(pa.string()).fill_null("").to_numpy(zero_copy_only=False).astype(str)[rows]
        if _is_textual(schema_field, strings):
            text = np.full(n, "", dtype=object)
            text[target] = strings
            meta.textual[name] = text.astype(str)
        else:
            meta.categorical[name] = _multi_hot(strings, target, n)
    return meta


def _is_textual(schema_field: Any, strings: np.ndarray) -> bool:
    """Schema says: categorical strings are categories, other strings are text. Without a schema, long or
    nearly-unique strings are text."""
    if schema_field is not None:
        return not schema_field.categorical
    if not strings.size:
        return False
    mean_length = float(np.char.str_len(strings).mean())
    nearly_unique = len(np.unique(strings)) > 0.5 * strings.size
    return mean_length >= _TEXT_MEAN_LENGTH or (nearly_unique and mean_length >= 15)


def _multi_hot(strings: np.ndarray, target: np.ndarray, n: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Multi-valued categorical 'a|b|c' -> (n, n_values) binary CSR (values lower-cased like Personalize)."""
    split = pc.split_pattern(pa.array(strings), "|")
    lengths = pc.list_value_length(split).to_numpy(zero_copy_only=False)
    flat = pc.utf8_lower(pc.utf8_trim_whitespace(pc.list_flatten(split)))
    rows = np.repeat(target, lengths)
    codes, values = _encode(pa.chunked_array([flat]))
    nonempty = values != ""
    keep = nonempty[codes]
    remap = np.cumsum(nonempty) - 1
    mat = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (rows[keep], remap[codes[keep]])), shape=(n, int(nonempty.sum()))
    )
    mat.sum_duplicates()
    mat.data[:] = 1.0
    return mat, values[nonempty]
