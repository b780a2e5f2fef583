"""End-to-end: a v2 model that mixes in v1 serves through boto3, streamed events move it, batch lines match it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tastemaker.cli.local_server import LocalServer
from tastemaker.recipes.sasrec import torch_available
from tests.e2e.datagen import GENRES, write_dataset
from tests.e2e.util import wait_status
from tests.faults.harness import group_with_interactions, trained_version, unique

pytestmark = pytest.mark.skipif(not torch_available(), reason="PyTorch is not installed")

# One epoch at a tiny learning rate: the network has learnt next to nothing, so the validation slice gives v1 a
# weight above 0 and both parts serve.
WEAK = {"training_epochs": "1", "early_stopping_patience": "1", "learning_rate": "0.0001", "hidden_dimension": "16",
        "num_blocks": "1", "max_sequence_length": "10", "use_item_metadata": "false"}


def genre_of(item_id: str) -> str:
    return GENRES[int(item_id[1:]) % len(GENRES)]


@pytest.mark.slow
def test_v2_with_v1_mixed_in_serves_real_time_and_batch(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_dataset(data, users=120, items=90, per_user=25)
    state = tmp_path / "srv"
    with LocalServer(state, import_roots=[data]) as server:
        personalize = server.client("personalize")
        runtime = server.client("personalize-runtime")
        events = server.client("personalize-events")
        group, _ = group_with_interactions(personalize, data / "interactions.csv")
        version = trained_version(personalize, group, "aws-user-personalization-v2", WEAK)
        (model_json,) = (state / "blobs").glob("models/*/j*/model.json")
        training = json.loads(model_json.read_text())["settings"]["training"]
        assert training["v1_weight"] > 0  # the artifact carries v1 and serves the mixture
        campaign = personalize.create_campaign(name=unique("c"), solutionVersionArn=version)["campaignArn"]
        assert wait_status(lambda: personalize.describe_campaign(campaignArn=campaign), "campaign")["status"] == "ACTIVE"

        # Batch lines equal the campaign's answers (no streamed events yet).
        batch_in = data / "users.jsonl"
        batch_in.write_text("".join(json.dumps({"userId": f"u{u}"}) + "\n" for u in range(0, 12, 3)))
        job = personalize.create_batch_inference_job(
            jobName=unique("bij"), solutionVersionArn=version, roleArn="arn:aws:iam::000000000000:role/R",
            jobInput={"s3DataSource": {"path": str(batch_in)}},
            jobOutput={"s3DataDestination": {"path": str(data / "out")}}, numResults=10)["batchInferenceJobArn"]
        finished = wait_status(lambda: personalize.describe_batch_inference_job(batchInferenceJobArn=job),
                               "batchInferenceJob", timeout=180)
        assert finished["status"] == "ACTIVE", finished.get("failureReason")
        for line in map(json.loads, (data / "out" / "users.jsonl.out").read_text().splitlines()):
            live = runtime.get_recommendations(campaignArn=campaign, userId=line["input"]["userId"],
                                               numResults=10)["itemList"]
            assert line["output"]["recommendedItems"] == [i["itemId"] for i in live]

        # Streamed events of another genre move a known user's list at once (both parts see them).
        user = "u0"  # likes GENRES[0]
        before = [i["itemId"] for i in runtime.get_recommendations(campaignArn=campaign, userId=user,
                                                                    numResults=10)["itemList"]]
        other = [f"i{k}" for k in range(90) if genre_of(f"i{k}") == GENRES[1]][:8]
        tracker = personalize.create_event_tracker(name=unique("t"), datasetGroupArn=group)
        wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]),
                    "eventTracker")
        now = time.time()
        events.put_events(trackingId=tracker["trackingId"], userId=user, sessionId="s1",
                          eventList=[{"eventType": "click", "itemId": item, "sentAt": now - 60 + k}
                                     for k, item in enumerate(other)])
        after = before
        for _attempt in range(50):  # the serving workers see the tracker within about a second
            after = [i["itemId"] for i in runtime.get_recommendations(campaignArn=campaign, userId=user,
                                                                       numResults=10)["itemList"]]
            if sum(genre_of(i) == GENRES[1] for i in after) > sum(genre_of(i) == GENRES[1] for i in before):
                break
            time.sleep(0.2)
        assert sum(genre_of(i) == GENRES[1] for i in after) > sum(genre_of(i) == GENRES[1] for i in before), \
            (before, after)
