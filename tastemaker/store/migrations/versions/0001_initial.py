"""Initial schema: resources, tags, dataset parts, jobs, events."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("arn", sa.String(256), nullable=False, unique=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("name_key", sa.String(300), nullable=True),
        sa.Column("dataset_group_arn", sa.String(256), nullable=True, index=True),
        sa.Column("parent_arn", sa.String(256), nullable=True, index=True),
        sa.Column("status", sa.String(40), nullable=True),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("kind", "name_key", name="uq_resources_kind_name"),
    )
    op.create_index("ix_resources_kind_seq", "resources", ["kind", "seq"])
    op.create_table(
        "tags",
        sa.Column("arn", sa.String(256), primary_key=True),
        sa.Column("tag_key", sa.String(128), primary_key=True),
        sa.Column("tag_value", sa.String(256), nullable=False),
    )
    op.create_table(
        "dataset_parts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset_arn", sa.String(256), nullable=False, index=True),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("blob_key", sa.String(512), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("job_arn", sa.String(256), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("resource_arn", sa.String(256), nullable=False, index=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("heartbeat_at", sa.Float, nullable=True),
        sa.Column("run_after", sa.Float, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("dataset_group_arn", sa.String(256), nullable=False),
        sa.Column("event_id", sa.String(256), nullable=False),
        sa.Column("session_id", sa.String(256), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=True),
        sa.Column("item_id", sa.String(256), nullable=True),
        sa.Column("event_type", sa.String(256), nullable=False),
        sa.Column("event_value", sa.Float, nullable=True),
        sa.Column("sent_at", sa.Float, nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.UniqueConstraint("dataset_group_arn", "event_id", name="uq_events_group_event_id"),
    )
    op.create_index("ix_events_group_user", "events", ["dataset_group_arn", "user_id"])
    op.create_index("ix_events_group_session", "events", ["dataset_group_arn", "session_id"])


def downgrade() -> None:
    for table in ("events", "jobs", "dataset_parts", "tags", "resources"):
        op.drop_table(table)
