"""Monitoring: the audit trail (one row per control-plane call, allowed or refused, read by CloudTrail
LookupEvents), webhooks and their durable outbox of notifications, stream-ingestion checkpoints."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_monitoring"
down_revision = "0004_job_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("event_time", sa.Float, nullable=False, index=True),
        sa.Column("event_name", sa.String(64), nullable=False, index=True),
        sa.Column("event_source", sa.String(64), nullable=False),
        sa.Column("read_only", sa.Boolean, nullable=False),
        sa.Column("access_key_id", sa.String(128), nullable=True, index=True),
        sa.Column("username", sa.String(64), nullable=True),
        sa.Column("resource_names", sa.JSON, nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("record", sa.JSON, nullable=False),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("target", sa.String(2048), nullable=False),
        sa.Column("dataset_group_arn", sa.String(256), nullable=True, index=True),
        sa.Column("secret", sa.String(128), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("webhook_id", sa.String(40), nullable=False, index=True),
        sa.Column("event", sa.JSON, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float, nullable=False, index=True),
        sa.Column("delivered_at", sa.Float, nullable=True),
        sa.Column("given_up", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("event_id", "webhook_id", name="uq_outbox_event_webhook"),
    )
    op.create_table(
        "stream_checkpoints",
        sa.Column("consumer", sa.String(256), primary_key=True),
        sa.Column("shard", sa.String(256), primary_key=True),
        sa.Column("position", sa.String(256), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stream_checkpoints")
    op.drop_table("outbox")
    op.drop_table("webhooks")
    op.drop_table("audit_events")
