"""Jobs: a lease generation per claim, the fencing token that keeps an owner that lost its job from writing."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_job_leases"
down_revision = "0003_access_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lease", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE jobs SET lease = attempts")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lease")
