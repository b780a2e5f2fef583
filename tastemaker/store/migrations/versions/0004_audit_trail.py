"""Audit trail: one row per control-plane call (allowed or refused), read by CloudTrail LookupEvents."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_audit_trail"
down_revision = "0003_access_keys"
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


def downgrade() -> None:
    op.drop_table("audit_events")
