"""Events: an index on (dataset_group_arn, id), so a group's newest events are an index walk on PostgreSQL.

The console's event tracker page reads a group's newest rows ("WHERE dataset_group_arn = ? ORDER BY id DESC
LIMIT n", store.events.newest). Without this index PostgreSQL walks the primary key backwards through every
group's rows until it has found n of this group, or sorts all of the group's rows found through another index;
with it the read is n index entries. On SQLite the rowid already ends every index, so the (group, user, id)
index served it; the new one is the same walk without skipping users. It only adds: old code runs unchanged.
"""

from __future__ import annotations

from alembic import op

revision = "0009_events_group_index"
down_revision = "0008_change_counter"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_group_id", "events", ["dataset_group_arn", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_group_id", table_name="events")
