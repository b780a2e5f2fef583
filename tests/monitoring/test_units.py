"""The monitoring package's pure parts: per-minute statistics, CloudWatch aggregation, redaction, log lines."""

from __future__ import annotations

import json
import logging
import os
import time

import pytest

from tastemaker.api import service_models
from tastemaker.monitoring import audit, cloudwatch, logs
from tastemaker.monitoring.metrics import MAX_SERIES, Recorder


def test_a_series_keeps_counts_errors_and_latency_of_successes_per_minute() -> None:
    rec = Recorder()
    campaign = "arn:aws:personalize:us-east-1:000000000000:campaign/c"
    for now, status, ms in ((600.0, 200, 4.0), (610.0, 200, 2.0), (650.0, 404, 99.0), (665.0, 500, 50.0)):
        rec.request(now, "GetRecommendations", {"campaign_arn": campaign}, status, ms)
    (series,) = rec.requests.values()
    assert (series.dimension, series.value) == ("CampaignArn", campaign)
    assert (series.requests, series.client_errors, series.server_errors, series.latency_count) == (4, 1, 1, 2)
    assert series.snapshot() == {600: [3, 1, 0, 2, 6.0, 2.0, 4.0], 660: [1, 0, 1, 0, 0.0, 50.0, 50.0]}


def test_cloudwatch_sums_minutes_into_periods() -> None:
    rec = Recorder()
    for now in (0.0, 61.0, 130.0, 190.0):
        rec.request(now, "PutItems", {"dataset_arn": "d"}, 200, now / 10)
    (series,) = rec.requests.values()
    latency = cloudwatch.Metric("PutItemsLatency", (("DatasetArn", "d"),), "Milliseconds", series, "latency")
    assert latency.datapoints(0, 240, 120) == {0: [2, 6.1, 0.0, 6.1], 120: [2, 32.0, 13.0, 19.0]}
    count = cloudwatch.Metric("PutItemsRequests", (("DatasetArn", "d"),), "Count", series, "requests")
    assert count.datapoints(60, 180, 60) == {60: [1, 1, 1.0, 1.0], 120: [1, 1, 1.0, 1.0]}


def test_client_chosen_dimension_values_are_bounded() -> None:
    rec = Recorder()
    for k in range(MAX_SERIES + 10):
        rec.request(0.0, "GetRecommendations", {"campaign_arn": f"arn-{k}"}, 404, 1.0)
    assert len(rec.requests) == MAX_SERIES + 1  # the overflow counts once, without a dimension
    assert rec.requests[("GetRecommendations", None)].requests == 10


def test_sensitive_members_are_hidden_by_the_model_and_by_name() -> None:
    info = service_models.operation_by_name("personalize", "CreateFilter")
    assert info is not None
    params = {"name": "f", "datasetGroupArn": "arn:x", "filterExpression": "EXCLUDE ItemID WHERE x",
              "tags": [{"tagKey": "k", "tagValue": "v"}], "clientSecret": "s3cr3t"}
    hidden = audit.redact(info.input_shape, params)
    assert hidden == {"name": "f", "datasetGroupArn": "arn:x", "filterExpression": audit.HIDDEN,
                      "tags": [{"tagKey": audit.HIDDEN, "tagValue": audit.HIDDEN}], "clientSecret": audit.HIDDEN}


@pytest.mark.parametrize(("arn", "kind"), [
    ("arn:aws:personalize:us-east-1:1:dataset-group/g", "AWS::Personalize::DatasetGroup"),
    ("arn:aws:personalize:us-east-1:1:solution/s", "AWS::Personalize::Solution"),
    ("arn:aws:personalize:us-east-1:1:solution/s/abcd1234", "AWS::Personalize::SolutionVersion"),
    ("arn:aws:personalize:us-east-1:1:batch-inference-job/b", "AWS::Personalize::BatchInferenceJob"),
])
def test_resource_types_are_cloudtrails(arn: str, kind: str) -> None:
    assert audit.resource_type(arn) == kind


def test_json_log_lines_carry_the_structured_fields() -> None:
    record = logging.LogRecord("tastemaker.jobs", logging.INFO, __file__, 1, "job %s done", (7,), None)
    record.fields = {"job_id": 7, "failure_reason": None}
    line = json.loads(logs.LineFormatter("json").format(record))
    assert line["message"] == "job 7 done" and line["job_id"] == 7 and line["logger"] == "tastemaker.jobs"
    text = logs.LineFormatter("text").format(record)
    assert text.endswith("INFO tastemaker.jobs: job 7 done job_id=7")


def test_the_request_line_is_one_write(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    log = logs.RequestLog()
    log.enabled, log.fd, log.json = True, fd, True
    log.write(1_700_000_000.25, "rid", "GetRecommendations", "arn:c", "AK", 200, 1.23456)
    log.flush()
    os.close(fd)
    line = json.loads(path.read_text())
    assert line == {"time": "2023-11-14T22:13:20.250Z", "level": "INFO", "logger": "tastemaker.requests",
                    "request_id": "rid", "operation": "GetRecommendations", "arn": "arn:c", "access_key_id": "AK",
                    "status": 200, "latency_ms": 1.235, "error": None}


def test_bad_log_settings_name_the_choices() -> None:
    with pytest.raises(ValueError, match="debug, info, warning"):
        logs.configure("loud")
    with pytest.raises(ValueError, match="text, json"):
        logs.configure("info", "xml")


def test_the_grafana_dashboard_reads_metrics_the_server_exposes() -> None:
    import re
    from pathlib import Path

    from tastemaker.monitoring.metrics import JOB_NAMES, OPERATION_NAMES

    dashboard = json.loads((Path(__file__).parents[2] / "deploy/grafana/tastemaker-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\{", e)}
    names = {n for group in (OPERATION_NAMES, JOB_NAMES) for v in group.values()
             for n in (v.requests, v.client_errors, v.server_errors, v.latency) if n}
    exposed = ({f"{n}_total" for n in names} | {f"{n}_bucket" for n in names} | {
        "tastemaker_requests_total", "tastemaker_job_queue_depth", "tastemaker_dataset_rows",
        "tastemaker_deployment_model_bytes", "tastemaker_deployment_index_bytes",
        "process_resident_memory_bytes", "process_cpu_seconds_total"})
    assert used and used <= exposed, used - exposed


def test_client_chosen_values_cannot_forge_request_lines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    log = logs.RequestLog()
    log.enabled, log.fd = True, fd
    log.write(0.0, "rid", "GetRecommendations", "arn:x\n1970-01-01T00:00:00.000Z INFO forged", "AK\r", 404, 1.0)
    log.flush()
    os.close(fd)
    (line,) = path.read_text().splitlines()
    assert "arn=arn:x\\n1970" in line and "access_key_id=AK\\r" in line


def test_request_lines_are_buffered_and_written_whole(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    monkeypatch.setattr(logs, "FLUSH_BYTES", 4096)
    log = logs.RequestLog()
    log.enabled, log.fd = True, fd
    now = time.time() + 3600  # not yet due: only the size or an explicit flush writes
    log.write(now, "first", "GetRecommendations", "arn:c", "AK", 200, 1.0)
    assert path.read_text() == ""  # buffered, not one system call per request
    count = 1
    while path.read_text() == "":
        log.write(now, f"r{count}", "GetRecommendations", "arn:c", "AK", 200, 1.0)
        count += 1
    written = path.read_text()
    assert written.endswith("\n") and len(written) >= 4096  # whole lines, once the buffer was full
    log.write(now, "last", "GetRecommendations", "arn:c", "AK", 200, 1.0)
    log.flush()
    lines = path.read_text().splitlines()
    assert len(lines) == count + 1 and "request_id=first" in lines[0] and "request_id=last" in lines[-1]
    os.close(fd)


def test_a_buffered_request_line_is_written_by_the_flusher_when_due(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    log = logs.RequestLog()
    log.enabled, log.fd = True, fd
    log.write(time.time(), "quiet", "GetRecommendations", "arn:c", "AK", 200, 1.0)
    deadline = time.time() + 30
    while "request_id=quiet" not in path.read_text() and time.time() < deadline:
        time.sleep(0.02)  # no further request comes: the daemon flusher writes it
    assert "request_id=quiet" in path.read_text()
    os.close(fd)
