"""Metric attribution: attributed metrics per 15-minute window, each attribution's read position, and the
recommendations served per comparison arm."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_metric_attribution"
down_revision = "0005_monitoring"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attribution_windows",
        sa.Column("metric_attribution_arn", sa.String(256), primary_key=True),
        sa.Column("metric_name", sa.String(256), primary_key=True),
        sa.Column("source", sa.String(256), primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True),
        sa.Column("event_type", sa.String(256), nullable=False),
        sa.Column("value_sum", sa.Float, nullable=False),
        sa.Column("sample_count", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "attribution_cursors",
        sa.Column("metric_attribution_arn", sa.String(256), primary_key=True),
        sa.Column("last_event_id", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "arm_exposures",
        sa.Column("campaign_arn", sa.String(256), primary_key=True),
        sa.Column("arm", sa.String(32), primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True),
        sa.Column("served", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("arm_exposures")
    op.drop_table("attribution_cursors")
    op.drop_table("attribution_windows")
