"""An export counts its rows written while it writes a part file, not only once the part is published: a big
single-part export shows how far it is (the console's jobs page and `tastemaker jobs` read this progress)."""

from __future__ import annotations

import csv
import functools
import time
from typing import Any

import pytest

from tastemaker.jobs import export
from tastemaker.monitoring.progress import JobProgress
from tastemaker.realtime.events_api import put_events
from tastemaker.services import Services
from tastemaker.store import queue, resources
from tests.realtime.conftest import INTERACTIONS, make_group, services  # noqa: F401 - the services fixture

EVENTS = 230


def test_rows_written_are_recorded_while_a_single_part_file_is_written(services: Services,  # noqa: F811
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    group = make_group(services, {"Interactions": INTERACTIONS})
    for n in range(EVENTS):
        put_events(group.ctx, tracking_id=group.tracking_id, session_id=f"s{n % 7}", user_id=f"u{n % 7}",
                   event_list=[{"event_type": "click", "item_id": f"i{n}", "sent_at": time.time()}])
    out = services.settings.imports_dir / "exports"
    from tastemaker.control.export_jobs import create_dataset_export_job

    arn = create_dataset_export_job(group.ctx, job_name="progress", dataset_arn=group.datasets["Interactions"],
                                    role_arn="arn:aws:iam::000000000000:role/x",
                                    job_output={"s3_data_destination": {"path": str(out) + "/"}},
                                    ingestion_mode="PUT")["dataset_export_job_arn"]
    job = queue.claim(services.engine, queue.worker_identity(), [queue.JobKind.DATASET_EXPORT])
    assert job is not None and job.resource_arn == arn

    recorded: list[dict[str, Any]] = []  # the progress as stored after each write, and the files then on disk

    class Watched(JobProgress):
        def record(self) -> None:
            super().record()
            with services.engine.connect() as conn:
                stored = dict(resources.get(conn, arn, "dataset_export_job").body["progress"])
            recorded.append({**stored, "published": sorted(p.name for p in out.glob("progress/*.csv"))})

    monkeypatch.setattr(export, "CHUNK_ROWS", 100)
    monkeypatch.setattr(export, "JobProgress", functools.partial(Watched, every=0.0))  # record every chunk
    export.export_dataset(services, job, lambda: False)

    assert [(r["lines_processed"], r["files_done"], r["files_total"], r["unit"], r["published"]) for r in recorded] == [
        (0, 0, 1, "rows written", []),  # started
        (100, 0, 1, "rows written", []), (200, 0, 1, "rows written", []),  # inside the one part file
        (EVENTS, 0, 1, "rows written", []),
        (EVENTS, 1, 1, "rows written", ["part-00000.csv"])]  # published
    with (out / "progress" / "part-00000.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == EVENTS and {r["ITEM_ID"] for r in rows} == {f"i{n}" for n in range(EVENTS)}
    with services.engine.connect() as conn:
        done = resources.get(conn, arn, "dataset_export_job")
    assert done.status == "ACTIVE" and done.body["row_count"] == EVENTS


def test_parts_hold_rows_per_file_and_an_empty_export_has_one_header_only_part(monkeypatch: pytest.MonkeyPatch
                                                                             ) -> None:
    monkeypatch.setattr(export, "ROWS_PER_FILE", 1000)
    assert export.part_slices(0) == [(0, 0)]
    assert export.part_slices(999) == [(0, 999)]
    assert export.part_slices(2500) == [(0, 1000), (1000, 1000), (2000, 500)]
