"""SQLAlchemy table definitions of the metadata store (the Alembic migrations create the same)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Every Personalize resource is one row: its status and its Describe document (snake_case JSON).
resources = sa.Table(
    "resources",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("arn", sa.String(256), nullable=False, unique=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("name_key", sa.String(300), nullable=True),  # account/region/name for uniqueness
    sa.Column("dataset_group_arn", sa.String(256), nullable=True, index=True),
    sa.Column("parent_arn", sa.String(256), nullable=True, index=True),
    sa.Column("status", sa.String(40), nullable=True),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("kind", "name_key", name="uq_resources_kind_name"),
)
sa.Index("ix_resources_kind_seq", resources.c.kind, resources.c.seq)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("arn", sa.String(256), primary_key=True),
    sa.Column("tag_key", sa.String(128), primary_key=True),
    sa.Column("tag_value", sa.String(256), nullable=False),
)

# Parquet parts that make up a dataset's data; a FULL import swaps its BULK parts in one transaction.
dataset_parts = sa.Table(
    "dataset_parts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_arn", sa.String(256), nullable=False, index=True),
    sa.Column("origin", sa.String(8), nullable=False),  # BULK | PUT
    sa.Column("blob_key", sa.String(512), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("job_arn", sa.String(256), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

# The durable job queue: imports, training, batch jobs, deletes.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("resource_arn", sa.String(256), nullable=False, index=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),  # queued | running | done | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("max_attempts", sa.Integer, nullable=False, default=2),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("claimed_by", sa.String(200), nullable=True),
    sa.Column("heartbeat_at", sa.Float, nullable=True),
    sa.Column("lease", sa.Integer, nullable=False, default=0, server_default="0"),  # fencing token (store/queue.py)
    sa.Column("run_after", sa.Float, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Real-time events (PutEvents) in arrival order, the durable source for training and filters.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("dataset_group_arn", sa.String(256), nullable=False),
    sa.Column("event_id", sa.String(256), nullable=False),
    sa.Column("session_id", sa.String(256), nullable=False),
    sa.Column("user_id", sa.String(256), nullable=True),
    sa.Column("item_id", sa.String(256), nullable=True),
    sa.Column("event_type", sa.String(256), nullable=False),
    sa.Column("event_value", sa.Float, nullable=True),
    sa.Column("sent_at", sa.Float, nullable=False),
    sa.Column("record", sa.JSON, nullable=False),  # the full row in schema field names
    sa.Column("received_at", sa.Float, nullable=False),
    sa.UniqueConstraint("dataset_group_arn", "event_id", name="uq_events_group_event_id"),
)
# Ending in id: the newest rows of one user or session are a backward index walk (bounded reads).
sa.Index("ix_events_group_user_id", events.c.dataset_group_arn, events.c.user_id, events.c.id)
sa.Index("ix_events_group_session_id", events.c.dataset_group_arn, events.c.session_id, events.c.id)
# A group's newest rows (the console's tracker page, store.events.newest): migration 0009_events_group_index.
sa.Index("ix_events_group_id", events.c.dataset_group_arn, events.c.id)

# Access keys beside the root key: the secret encrypted at rest (api.keys), an IAM-style policy, rotation state.
# The row "root" (no secret) records whether the root key from the environment / credentials file is disabled.
access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("access_key_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("is_root", sa.Boolean, nullable=False, default=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("policy", sa.JSON, nullable=True),
    sa.Column("secret_ciphertext", sa.Text, nullable=True),
    sa.Column("previous_secret_ciphertext", sa.Text, nullable=True),  # valid until previous_expires_at
    sa.Column("previous_expires_at", sa.Float, nullable=True),
    sa.Column("version", sa.Integer, nullable=False, default=1),  # bumped on every change (cache refresh)
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Metric attribution: attributed SUM / SAMPLECOUNT per metric, source and 15-minute window (the aggregator in
# tastemaker.jobs.attribution adds to them), and how far into `events` each attribution has read.
attribution_windows = sa.Table(
    "attribution_windows",
    metadata,
    sa.Column("metric_attribution_arn", sa.String(256), primary_key=True),
    sa.Column("metric_name", sa.String(256), primary_key=True),
    sa.Column("source", sa.String(256), primary_key=True),  # campaign / recommender ARN or eventAttributionSource
    sa.Column("window_start", sa.BigInteger, primary_key=True),  # epoch seconds, a multiple of 900
    sa.Column("event_type", sa.String(256), nullable=False),
    sa.Column("value_sum", sa.Float, nullable=False),
    sa.Column("sample_count", sa.BigInteger, nullable=False),
)
attribution_cursors = sa.Table(
    "attribution_cursors",
    metadata,
    sa.Column("metric_attribution_arn", sa.String(256), primary_key=True),
    sa.Column("last_event_id", sa.BigInteger, nullable=False),
)
# The comparison-arm extension: recommendations served per campaign, arm and 15-minute window.
arm_exposures = sa.Table(
    "arm_exposures",
    metadata,
    sa.Column("campaign_arn", sa.String(256), primary_key=True),
    sa.Column("arm", sa.String(32), primary_key=True),  # "main" | "comparison"
    sa.Column("window_start", sa.BigInteger, primary_key=True),
    sa.Column("served", sa.BigInteger, nullable=False),
)
# One row (id 1): a number bumped in the same transaction as every insert, update or delete of a resource that
# serving keeps in memory (store/changes.py), so a serving process checks for changes with one primary-key read.
change_counter = sa.Table(
    "change_counter",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.BigInteger, nullable=False),
)
