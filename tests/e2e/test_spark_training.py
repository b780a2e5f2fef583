"""Training on Spark through boto3: a server with TASTEMAKER_SPARK_MASTER=local[2] (and a low
TASTEMAKER_SPARK_MIN_INTERACTIONS) fits aws-user-personalization's ALS factors with Spark MLlib, and the
version is ACTIVE, served by a campaign, and agrees with the same data trained in-process (the `server`
fixture, no Spark) on the same seed.

The tolerances, and why they are not equality: MLlib's ALS and implicit's are different solvers (MLlib solves
each row exactly and scales the regularisation by the row's interactions, implicit runs conjugate-gradient
steps with a constant one; their random initialisations differ), so the factors differ. What the two
versions share exactly is everything else of the model (transitions, popularity, stored histories, the
serving code), so the served lists agree on most items: the mean overlap of the top 25 must be at least
OVERLAP_AT_25 (measured: 0.85, the lowest user 0.80), and the offline evaluation's NDCG@10 (each version fits
its own evaluation model, on Spark and in-process) within NDCG_TOLERANCE of each other, relative (measured:
0.0387 on Spark, 0.0381 in-process, +1.6%). The tolerance is 5%, not the issue's 2%: this set holds out 200
users at an NDCG@10 near 0.04, where one hit more or less moves the figure by about 2.6%. The 2% parity is
measured on MovieLens by `bench/scale.py --spark-training --movielens ...` (docs/scaling.md), which CI
cannot run (the data is not in the repository).
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import write_taste_groups
from tests.e2e.util import wait_status
from tests.faults.harness import group_with_interactions

pytest.importorskip("pyspark")

ROLE = "arn:aws:iam::000000000000:role/PersonalizeRole"
OVERLAP_AT_25 = 0.6
NDCG_TOLERANCE = 0.05
# The ALS engine (not EASE) needs more than EASE_MAX_ITEMS (10,000) items with 3+ users, also in the
# evaluation's 90% of the users: 12,000 items, each given to 4 users of its taste group.
ITEMS, USERS, GROUPS, COVER, EXTRA = 12_000, 2_000, 40, 4, 6


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def catalogue(import_root: Path) -> Path:
    return write_taste_groups(import_root / unique("spark-train") / "interactions.csv", items=ITEMS, users=USERS,
                              groups=GROUPS, cover=COVER, extra=EXTRA)


def train_and_serve(personalize: Any, csv: Path, out: dict[str, Any]) -> None:
    """Import `csv` into a new group, train aws-user-personalization (32 factors), deploy it; fill `out`."""
    group, _dataset = group_with_interactions(personalize, csv, unique("st"), timeout=300)
    solution = personalize.create_solution(
        name=unique("up"), datasetGroupArn=group, recipeArn="arn:aws:personalize:::recipe/aws-user-personalization",
        solutionConfig={"algorithmHyperParameters": {"hidden_dimension": "32"}})["solutionArn"]
    wait_status(lambda: personalize.describe_solution(solutionArn=solution), "solution")
    version = personalize.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    out["version"] = version
    out["trained"] = wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version),
                                 "solutionVersion", timeout=900)
    if out["trained"]["status"] != "ACTIVE":
        return
    campaign = personalize.create_campaign(name=unique("c"), solutionVersionArn=version)["campaignArn"]
    out["campaign"] = wait_status(lambda: personalize.describe_campaign(campaignArn=campaign), "campaign",
                                  timeout=300)


@pytest.fixture(scope="module")
def trained(server: LocalServer, spark_server: LocalServer, catalogue: Path) -> dict[str, dict[str, Any]]:
    """The same data trained in-process and on Spark, the two at once (one per server)."""
    results: dict[str, dict[str, Any]] = {"local": {}, "spark": {}}
    errors: list[BaseException] = []

    def run(name: str, srv: LocalServer) -> None:
        try:
            train_and_serve(srv.client("personalize"), catalogue, results[name])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name, srv))
               for name, srv in (("local", server), ("spark", spark_server))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.slow
def test_version_trained_on_spark_is_active_served_and_agrees_with_in_process(
        trained: dict[str, dict[str, Any]], server: LocalServer, spark_server: LocalServer) -> None:
    local, spark = trained["local"], trained["spark"]
    assert spark["trained"]["status"] == "ACTIVE", spark["trained"].get("failureReason")
    assert local["trained"]["status"] == "ACTIVE", local["trained"].get("failureReason")
    assert spark["campaign"]["status"] == "ACTIVE" and local["campaign"]["status"] == "ACTIVE"
    # Both fits of the Spark version (the evaluation's and the final one) ran on Spark; none of the other.
    assert f"{spark['version']}: 2 ALS fits on Spark (local[2])" in spark_server.log_path.read_text(errors="replace")

    runtimes = {name: srv.client("personalize-runtime") for name, srv in (("local", server), ("spark", spark_server))}
    overlaps = []
    for user in range(0, USERS, 40):  # 50 users, one or two per taste group
        lists = {name: [i["itemId"] for i in runtimes[name].get_recommendations(
            campaignArn=trained[name]["campaign"]["campaignArn"], userId=f"u{user}", numResults=25)["itemList"]]
            for name in runtimes}
        assert len(lists["spark"]) == 25
        overlaps.append(len(set(lists["spark"]) & set(lists["local"])) / 25)
    assert float(np.mean(overlaps)) >= OVERLAP_AT_25, overlaps

    metrics = {name: srv.client("personalize").get_solution_metrics(
        solutionVersionArn=trained[name]["version"])["metrics"] for name, srv in (("local", server),
                                                                                 ("spark", spark_server))}
    ndcg = {name: metrics[name]["normalized_discounted_cumulative_gain_at_10"] for name in metrics}
    assert ndcg["local"] > 0
    assert abs(ndcg["spark"] - ndcg["local"]) <= NDCG_TOLERANCE * ndcg["local"], ndcg


@pytest.mark.slow
def test_spark_failure_fails_the_version_with_spark_s_reason(tmp_path_factory: pytest.TempPathFactory,
                                                              import_root: Path, catalogue: Path) -> None:
    """A master Spark refuses (local[0]: no threads) fails the version with Spark's own message."""
    srv = LocalServer(tmp_path_factory.mktemp("spark-broken"), import_roots=[import_root],
                      env={"TASTEMAKER_SPARK_MASTER": "local[0]", "TASTEMAKER_SPARK_MIN_INTERACTIONS": "1"})
    with srv:
        out: dict[str, Any] = {}
        train_and_serve(srv.client("personalize"), catalogue, out)
    assert out["trained"]["status"] == "CREATE FAILED"
    assert out["trained"]["failureReason"] == (
        "Training failed: Spark failed while training the factors: could not start Spark on master 'local[0]': "
        "org.apache.spark.SparkException: Asked to run locally with 0 threads")


def test_spark_reason_names_the_jvm_exception_not_py4j_s_preamble() -> None:
    from tastemaker.spark.training import spark_reason

    wrapped = ("An error occurred while calling o36.fit.\n: org.apache.spark.SparkException: Job aborted due to stage "
               "failure: Task serialization failed: java.lang.StackOverflowError\njava.lang.StackOverflowError\n\tat "
               "java.base/java.io.ObjectOutputStream.writeObject0(ObjectOutputStream.java:1170)")
    assert spark_reason(RuntimeError(wrapped)) == ("org.apache.spark.SparkException: Job aborted due to stage failure: "
                                                   "Task serialization failed: java.lang.StackOverflowError")
    executor = "Job aborted\nTraceback (most recent call last):\nMemoryError: Unable to allocate 3.7 GiB"
    assert spark_reason(RuntimeError(executor)) == "MemoryError: Unable to allocate 3.7 GiB"


def test_a_jvm_out_of_heap_says_which_setting_to_raise() -> None:
    # What MLlib's ALS raised at 2M interactions on local[2] with Spark's default 1g driver heap (bench/scale.py)
    from tastemaker.spark.training import spark_reason

    wrapped = ("An error occurred while calling o1093.fit.\n: org.apache.spark.SparkException: Job aborted due to "
               "stage failure: Task 0 in stage 380.0 failed 1 times, most recent failure: Lost task 0.0 in stage "
               "380.0 (TID 149) (192.0.2.2 executor driver): java.lang.OutOfMemoryError: Java heap space\n\tat "
               "java.base/java.util.Arrays.copyOf(Arrays.java:3537)\nCaused by: java.lang.OutOfMemoryError: Java "
               "heap space")
    reason = spark_reason(RuntimeError(wrapped))
    assert reason.startswith("org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage "
                             "380.0 failed 1 times")
    assert "java.lang.OutOfMemoryError: Java heap space; the Spark JVM ran out of heap: raise spark.driver.memory" in reason
    assert "spark.executor.memory, in spark-defaults.conf" in reason and len(reason) <= 500
    other = "An error occurred while calling o36.fit.\n: org.apache.spark.SparkException: Job aborted"
    assert "spark.driver.memory" not in spark_reason(RuntimeError(other))
