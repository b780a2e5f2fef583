"""Access keys: scoped keys with IAM-style policies, secrets encrypted at rest, rotation overlap."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_access_keys"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("is_root", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("policy", sa.JSON, nullable=True),
        sa.Column("secret_ciphertext", sa.Text, nullable=True),
        sa.Column("previous_secret_ciphertext", sa.Text, nullable=True),
        sa.Column("previous_expires_at", sa.Float, nullable=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("access_keys")
