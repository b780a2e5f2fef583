"""The change counter: one row bumped with every change to a resource that serving keeps in memory."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_change_counter"
down_revision = "0007_state_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "value": 0}])


def downgrade() -> None:
    op.drop_table("change_counter")
