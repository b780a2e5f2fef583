"""Typed resource records: a view is filled from the row's Describe body, absent or null fields take their
defaults, a row of another kind or one missing a Create-time field is refused, and `load` reads the stored row."""

from __future__ import annotations

from pathlib import Path

import pytest

from tastemaker.errors import ResourceNotFoundException
from tastemaker.store import db, resources
from tastemaker.store.records import Campaign, Dataset, SolutionVersion, load

ARN = "arn:aws:personalize:us-east-1:000000000000:campaign/c"


def row(kind: str, body: dict[str, object], arn: str = ARN) -> resources.Resource:
    return resources.Resource(arn, kind, "ACTIVE", body, None, None, 1.0, 1.0)


def test_fields_come_from_the_body_and_defaults_fill_the_rest() -> None:
    campaign = Campaign.of(row("campaign", {"solution_version_arn": "sv", "campaign_config": None,
                                            "min_provisioned_tps": 3}))
    assert campaign.solution_version_arn == "sv"
    assert campaign.campaign_config == {}  # stored null reads as empty, like `.get(...) or {}` did
    assert campaign.min_provisioned_tps == 3
    assert campaign.latest_campaign_update == {}
    assert campaign.follows_solution_arn is None
    assert campaign.arn == ARN and campaign.status == "ACTIVE"


def test_recipe_name_prefers_the_trained_recipe() -> None:
    body = {"solution_arn": "s", "storage_id": "x", "recipe_arn": "arn:aws:personalize:::recipe/aws-user-personalization"}
    assert SolutionVersion.of(row("solution_version", body)).recipe_name == "aws-user-personalization"
    body["trained_recipe"] = "aws-similar-items"
    assert SolutionVersion.of(row("solution_version", body)).recipe_name == "aws-similar-items"


def test_a_row_of_another_kind_is_refused_and_a_missing_create_field_fails_when_read() -> None:
    with pytest.raises(ValueError, match="not a dataset"):
        Dataset.of(row("campaign", {"solution_version_arn": "sv"}))
    campaign = Campaign.of(row("campaign", {}))  # built: code that never reads the field works as before
    assert campaign.min_provisioned_tps == 1
    with pytest.raises(KeyError, match="solution_version_arn"):
        campaign.solution_version_arn  # noqa: B018  (read, it fails as body["solution_version_arn"] did)


def test_load_reads_the_stored_row(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    db.upgrade(engine)
    try:
        with engine.begin() as conn:
            resources.insert(conn, arn=ARN, kind="campaign", status="ACTIVE",
                             body={"solution_version_arn": "sv", "campaign_config": {"enable_metadata": True}})
        with engine.connect() as conn:
            campaign = load(conn, ARN, Campaign)
            assert campaign.campaign_config == {"enable_metadata": True}
            with pytest.raises(ResourceNotFoundException):
                load(conn, ARN, Dataset)  # the ARN names a campaign, not a dataset
    finally:
        engine.dispose()


def test_batch_job_records_name_their_locations_and_default_like_the_create_call() -> None:
    from tastemaker.store.records import BatchInferenceJob, BatchSegmentJob

    body = {"solution_version_arn": "sv", "job_input": {"s3_data_source": {"path": "s3://b/in/"}},
            "job_output": {"s3_data_destination": {"path": "s3://b/out/"}}}
    job = BatchInferenceJob.of(row("batch_inference_job", body))
    assert (job.input_path, job.output_path) == ("s3://b/in/", "s3://b/out/")
    assert (job.num_results, job.filter_arn, job.batch_inference_job_mode) == (25, None, "BATCH_INFERENCE")
    assert job.batch_inference_job_config == {} and job.theme_generation_config == {} and job.progress == {}
    segment = BatchSegmentJob.of(row("batch_segment_job", {**body, "num_results": 500, "filter_arn": "f"}))
    assert (segment.num_results, segment.filter_arn, segment.output_path) == (500, "f", "s3://b/out/")
