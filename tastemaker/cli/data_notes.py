"""What quickstart says about a user's interactions before importing them: data that is probably wrong.

Personalize imports duplicate events (same user, item, event type and timestamp) without a word and refuses
timestamps that are not epoch seconds; quickstart says both up front, in its data summary, with the fix.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from tastemaker.cli.failures import CommandFailed

MILLISECONDS = 1e11  # epoch seconds pass this in the year 5138; epoch milliseconds passed it in 1973


def check_timestamps(table: pa.Table, where: str) -> None:
    """Refuse millisecond (or microsecond) timestamps before anything is created, naming the fix."""
    if "TIMESTAMP" not in table.column_names or table.num_rows == 0:
        return
    median = pc.approximate_median(table.column("TIMESTAMP").cast(pa.float64())).as_py()
    if median is not None and median > MILLISECONDS:
        raise CommandFailed(
            f"{where}: TIMESTAMP values look like milliseconds (median {median:.0f}); Personalize and Tastemaker "
            "take Unix epoch seconds. Divide the column by 1000, e.g. with pandas: "
            "df['TIMESTAMP'] = df['TIMESTAMP'] // 1000.")


def duplicate_events(table: pa.Table) -> int:
    """Rows that repeat an earlier row's user, item, event type and timestamp (each counts in training)."""
    keys = [c for c in ("USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP") if c in table.column_names]
    if table.num_rows == 0:
        return 0
    distinct = table.select(keys).group_by(keys).aggregate([]).num_rows
    return table.num_rows - distinct


def notes(table: pa.Table, where: str) -> list[str]:
    """Lines for the data summary (empty when nothing looks wrong); raises for data that cannot be right."""
    check_timestamps(table, where)
    duplicates = duplicate_events(table)
    if not duplicates:
        return []
    share = duplicates / table.num_rows
    return [(f"note: {duplicates:,} duplicate events ({share:.1%}: same user, item, event type and timestamp). "
             "Personalize imports them and each one counts in training; drop them first if they are not real "
             "repeats (pandas: df.drop_duplicates()).")]
