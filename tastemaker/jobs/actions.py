"""Training inputs for aws-next-best-action: PutActionInteractions rows join the Action_Interactions parts.

PutActionInteractions stores its rows in the events table under the Action_Interactions dataset's ARN
(tastemaker.realtime.events_api); training reads them back like streamed PutEvents (session-only rows are
stitched to the session's userId) and hands them to the trainer as one more Parquet part of that dataset.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa

from tastemaker.jobs.spec import DatasetInput


def with_streamed_actions(conn: sa.Connection, group_arn: str, datasets: dict[str, DatasetInput],
                          workdir: Path) -> dict[str, DatasetInput]:
    """`datasets` with the group's streamed action interactions added as a part of Action_Interactions."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tastemaker.control.datasets import dataset_of_type
    from tastemaker.realtime.feed import training_records

    found = datasets.get("Action_Interactions")
    dataset = dataset_of_type(conn, group_arn, "Action_Interactions") if found is not None else None
    if found is None or dataset is None:
        return datasets
    records = training_records(conn, dataset.arn)
    if not records:
        return datasets
    path = workdir / "action-events.parquet"
    pq.write_table(pa.Table.from_pylist(records), path)
    return {**datasets, "Action_Interactions": replace(found, parts=(*found.parts, str(path)))}
