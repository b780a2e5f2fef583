"""The state-change outbox (every resource status change, written with the change), room for encrypted
webhook secrets, and the bulk imports each metric attribution has counted."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_state_changes"
down_revision = "0006_metric_attribution"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "state_changes",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("arn", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("dataset_group_arn", sa.String(256), nullable=True),
        sa.Column("previous_status", sa.String(64), nullable=True),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    with op.batch_alter_table("webhooks") as batch:
        batch.alter_column("secret", type_=sa.String(512), existing_type=sa.String(128), existing_nullable=True)
    op.create_table(
        "attribution_imports",
        sa.Column("metric_attribution_arn", sa.String(256), primary_key=True),
        sa.Column("import_job_arn", sa.String(256), primary_key=True),
        sa.Column("rows", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("attribution_imports")
    with op.batch_alter_table("webhooks") as batch:
        batch.alter_column("secret", type_=sa.String(128), existing_type=sa.String(512), existing_nullable=True)
    op.drop_table("state_changes")
