"""Events: the user and session indexes end in id, so the newest rows of a user or session are an index walk.

PostgreSQL needs the id in the index to read "ORDER BY id DESC LIMIT n" of one (group, user_id) or
(group, session_id) without fetching all its rows (a session shared by many users holds many); on SQLite the
rowid already ends every index, and the new ones are the same walk.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_group_user", table_name="events")
    op.drop_index("ix_events_group_session", table_name="events")
    op.create_index("ix_events_group_user_id", "events", ["dataset_group_arn", "user_id", "id"])
    op.create_index("ix_events_group_session_id", "events", ["dataset_group_arn", "session_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_group_user_id", table_name="events")
    op.drop_index("ix_events_group_session_id", table_name="events")
    op.create_index("ix_events_group_user", "events", ["dataset_group_arn", "user_id"])
    op.create_index("ix_events_group_session", "events", ["dataset_group_arn", "session_id"])
