"""A v2 training whose worker is killed mid-training resumes, on the next claim, from its last saved epoch."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tastemaker.cli.local_server import LocalServer
from tastemaker.recipes.sasrec import torch_available
from tests.e2e.datagen import write_dataset
from tests.e2e.util import wait_status
from tests.faults.harness import RECIPE, Worker, group_with_interactions, unique

pytestmark = pytest.mark.skipif(not torch_available(), reason="PyTorch is not installed")

EPOCHS = 60
# A tiny network trained for many epochs without early stopping: the training lasts long enough to be hit.
PARAMS = {"training_epochs": str(EPOCHS), "early_stopping_patience": "0", "hidden_dimension": "16",
          "num_blocks": "1", "max_sequence_length": "10", "batch_size": "64", "use_item_metadata": "false"}


def saved_epoch(path: Path) -> int:
    import torch

    return int(torch.load(path, weights_only=True)["epoch"])


@pytest.mark.slow
def test_a_killed_worker_s_training_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_dataset(data, users=120, items=50, per_user=12)
    state = tmp_path / "srv"
    env = {"TASTEMAKER_JOB_STALE_SECONDS": "3"}
    blobs = state / "blobs"
    with LocalServer(state, import_roots=[data], env=env, extra_args=["--job-threads", "0"]) as server:
        worker = Worker(state, [data], env).start()
        try:
            client = server.client("personalize")
            group, _ = group_with_interactions(client, data / "interactions.csv")
            solution = client.create_solution(
                name=unique("sol"), datasetGroupArn=group, recipeArn=RECIPE + "aws-user-personalization-v2",
                solutionConfig={"algorithmHyperParameters": PARAMS})["solutionArn"]
            wait_status(lambda: client.describe_solution(solutionArn=solution), "solution")
            version = client.create_solution_version(solutionArn=solution)["solutionVersionArn"]
            # The evaluation fit comes first; wait for the final fit's first checkpoint in the blob store.
            deadline = time.time() + 240
            while not (found := sorted(blobs.glob("models/*/checkpoints/model.sasrec"))):
                assert time.time() < deadline, "no checkpoint of the final fit was stored"
                time.sleep(0.05)
            assert (found[0].parent / "evaluation.json").exists()  # the finished evaluation is kept too
            worker.kill()  # kill -9: the trainer dies with it
            epoch = saved_epoch(found[0])
            assert 1 <= epoch < EPOCHS
            worker = Worker(state, [data], env).start()  # the job's lease goes stale; this worker claims it
            final = wait_status(lambda: client.describe_solution_version(solutionVersionArn=version),
                                "solutionVersion", timeout=300)
            assert final["status"] == "ACTIVE", final
        finally:
            worker.stop()
    (model_json,) = blobs.glob("models/*/j*/model.json")
    training = json.loads(model_json.read_text())["settings"]["training"]
    assert training["resumed_from_epoch"] == epoch
    assert training["epochs_run"] == EPOCHS
    assert not list(blobs.glob("models/*/checkpoints/*"))  # removed once the version finished

