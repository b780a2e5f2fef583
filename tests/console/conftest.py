"""A live server for the console tests, and a real headless Chromium driven by Selenium.

Chromium and its driver come from Debian (`apt-get install chromium chromium-driver`; .ci/run installs them
when missing). Outside CI a machine without them skips the browser tests with that instruction; under CI=true
they are mandatory and fail instead. The server and the browser are package-scoped: they stop when tests/console
is done.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tastemaker.cli.local_server import LocalServer
from tests.conftest import IN_CI

INSTALL = "Install them with: apt-get install chromium chromium-driver (and pip install selenium, in the dev extra)."


@pytest.fixture(scope="package")
def console_import_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-import-root")


@pytest.fixture(scope="package")
def console_server(tmp_path_factory: pytest.TempPathFactory, console_import_root: Path) -> Iterator[LocalServer]:
    srv = LocalServer(tmp_path_factory.mktemp("console-server"), import_roots=[console_import_root])
    srv.start()
    yield srv
    srv.stop()


def _missing(what: str) -> None:
    message = f"The console's browser tests need {what}. {INSTALL}"
    if IN_CI:
        pytest.fail("CI=true makes the browser tests mandatory: " + message)
    pytest.skip(message)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        _missing("Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800",
                "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, for charts_drawn
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture(scope="package")
def trained(console_server: LocalServer, console_import_root: Path) -> dict[str, Any]:
    """A group with imported MovieLens-shaped interactions (and items), a trained user-personalization version
    deployed as a campaign and a SIMS (related items) campaign: what the explain, preview, batch and evaluation
    screens read."""
    from tests.e2e.datagen import INTERACTIONS_SCHEMA, ITEMS_SCHEMA, schema_json, write_dataset
    from tests.e2e.util import train_and_deploy, wait_status

    paths = write_dataset(console_import_root / "trained", users=80, items=40, per_user=15)
    personalize = console_server.client("personalize")
    group = personalize.create_dataset_group(name="console-trained")["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    datasets = {}
    for kind, schema in (("Interactions", INTERACTIONS_SCHEMA), ("Items", ITEMS_SCHEMA)):
        schema_arn = personalize.create_schema(name=f"console-trained-{kind}", schema=schema_json(schema))["schemaArn"]
        datasets[kind] = personalize.create_dataset(name=f"trained-{kind}", datasetGroupArn=group, datasetType=kind,
                                                    schemaArn=schema_arn)["datasetArn"]
        job = personalize.create_dataset_import_job(
            jobName=f"trained-{kind}", datasetArn=datasets[kind], roleArn="arn:aws:iam::000000000000:role/x",
            dataSource={"dataLocation": str(paths[kind.lower()])})["datasetImportJobArn"]
        wait_status(lambda job=job: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                    "datasetImportJob")
    version, campaign = train_and_deploy(personalize, group, "aws-user-personalization", "console-trained")
    _, sims = train_and_deploy(personalize, group, "aws-sims", "console-sims")
    return {"group": group, "datasets": datasets, "version": version, "campaign": campaign, "paths": paths,
            "sims": sims}


@pytest.fixture(scope="package")
def attributed(console_server: LocalServer) -> dict[str, Any]:
    """A group with an Interactions dataset (whose schema has EVENT_ATTRIBUTION_SOURCE), an event tracker and a
    metric attribution (click, SAMPLECOUNT) whose figures come from streamed events with an
    eventAttributionSource: 5 from "newsletter" sent an hour ago and 3 now, 2 from "homepage" now (the job runner's
    maintenance pass counts them). Users u0, u1, u2 sent them (u0: 4). No import, no training: what the jobs
    page's attribution charts and data deletions read."""
    import json
    import time

    from tests.e2e.datagen import INTERACTIONS_SCHEMA
    from tests.e2e.util import wait_status

    p = console_server.client("personalize")
    group = p.create_dataset_group(name="console-attributed")["datasetGroupArn"]
    wait_status(lambda: p.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    fields = [*INTERACTIONS_SCHEMA["fields"], {"name": "EVENT_ATTRIBUTION_SOURCE", "type": ["null", "string"]}]
    schema = p.create_schema(name="console-attributed",
                             schema=json.dumps(dict(INTERACTIONS_SCHEMA, fields=fields)))["schemaArn"]
    dataset = p.create_dataset(name="attributed-interactions", datasetGroupArn=group, datasetType="Interactions",
                               schemaArn=schema)["datasetArn"]
    wait_status(lambda: p.describe_dataset(datasetArn=dataset), "dataset")
    tracker = p.create_event_tracker(name="attributed", datasetGroupArn=group)
    wait_status(lambda: p.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]), "eventTracker")
    made = p.create_metric_attribution(
        name="console-attributed", datasetGroupArn=group,
        metricsOutputConfig={"roleArn": "arn:aws:iam::000000000000:role/x"},
        metrics=[{"eventType": "click", "metricName": "CLICKS", "expression": "SAMPLECOUNT()"}])
    attribution = made["metricAttributionArn"]
    wait_status(lambda: p.describe_metric_attribution(metricAttributionArn=attribution), "metricAttribution")
    events = console_server.client("personalize-events")
    now = time.time()
    sent = [("newsletter", now - 3600)] * 5 + [("newsletter", now)] * 3 + [("homepage", now)] * 2
    for n, (source, at) in enumerate(sent):
        events.put_events(trackingId=tracker["trackingId"], userId=f"u{n % 3}", sessionId=f"s{n}", eventList=[
            {"eventType": "click", "itemId": f"i{n}", "sentAt": at,
             "metricAttribution": {"eventAttributionSource": source}}])
    return {"group": group, "dataset": dataset, "attribution": attribution, "now": now,
            "tracker": tracker["eventTrackerArn"]}
