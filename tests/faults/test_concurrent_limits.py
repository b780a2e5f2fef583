"""Limits and same-name creates hold under concurrent clients on PostgreSQL (row locks on the parent rows).

SQLite serialises writers, so the races exist only on PostgreSQL: before the locks, 8 concurrent
CreateEventTracker made 4 trackers (limit 1), 10 CreateCampaign made 8 (limit 5), 40 CreateFilter 37 (limit 30),
DeleteDatasetGroup racing creates left children of a deleted group, and same-name losers got 500.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import write_dataset
from tests.e2e.util import wait_status
from tests.faults.harness import error_code, fresh_database, group_with_interactions, trained_version, unique

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[tuple[LocalServer, str]]:
    data = tmp_path_factory.mktemp("limits-data")
    write_dataset(data, users=60, items=40, per_user=20)
    url = fresh_database(postgres_url)
    srv = LocalServer(tmp_path_factory.mktemp("limits-server"), import_roots=[data],
                      env={"TASTEMAKER_DB_URL": url})
    srv.start()
    yield srv, url
    srv.stop()


def race(server: LocalServer, calls: list[Callable[[Any], Any]]) -> Counter[str | None]:
    """Run each call on its own client and thread, all released at once; count outcomes (None = success)."""
    clients = [server.client("personalize") for _ in calls]
    barrier = threading.Barrier(len(calls))
    outcomes: list[str | None] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        outcomes[index] = error_code(lambda: calls[index](clients[index]))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Counter(outcomes)


def test_limits_hold_under_concurrent_creates(pg_server: tuple[LocalServer, str]) -> None:
    server, _url = pg_server
    client = server.client("personalize")
    data = server.import_roots[0]
    group, _dataset = group_with_interactions(client, data / "interactions.csv")

    trackers = race(server, [lambda c, i=i: c.create_event_tracker(name=unique(f"t{i}"), datasetGroupArn=group)
                             for i in range(8)])
    assert trackers == Counter({None: 1, "ResourceAlreadyExistsException": 7}), trackers
    assert len(client.list_event_trackers(datasetGroupArn=group)["eventTrackers"]) == 1

    expression = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")'
    filters = race(server, [lambda c, i=i: c.create_filter(name=unique(f"f{i}"), datasetGroupArn=group,
                                                           filterExpression=expression) for i in range(40)])
    assert filters == Counter({None: 30, "LimitExceededException": 10}), filters
    assert len(client.list_filters(datasetGroupArn=group, maxResults=100)["Filters"]) == 30

    version = trained_version(client, group)
    campaigns = race(server, [lambda c, i=i: c.create_campaign(name=unique(f"c{i}"), solutionVersionArn=version)
                              for i in range(10)])
    assert campaigns == Counter({None: 5, "LimitExceededException": 5}), campaigns
    assert len(client.list_campaigns(maxResults=100)["campaigns"]) == 5


def test_same_name_creates_have_one_winner_and_no_server_errors(pg_server: tuple[LocalServer, str]) -> None:
    server, _url = pg_server
    name = unique("same")
    groups = race(server, [lambda c: c.create_dataset_group(name=name) for _ in range(8)])
    assert groups == Counter({None: 1, "ResourceAlreadyExistsException": 7}), groups
    schemas = race(server, [lambda c: c.create_schema(name=name, schema='{"type": "record", "name": "Interactions", '
                                                      '"fields": [{"name": "USER_ID", "type": "string"}, {"name": '
                                                      '"ITEM_ID", "type": "string"}, {"name": "TIMESTAMP", "type": '
                                                      '"long"}], "version": "1.0"}') for _ in range(8)])
    assert schemas == Counter({None: 1, "ResourceAlreadyExistsException": 7}), schemas


def test_delete_dataset_group_racing_creates_leaves_no_children(pg_server: tuple[LocalServer, str]) -> None:
    server, url = pg_server
    client = server.client("personalize")
    for _round in range(2):
        group = client.create_dataset_group(name=unique("doomed"))["datasetGroupArn"]
        wait_status(lambda group=group: client.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
        calls: list[Callable[[Any], Any]] = [lambda c, group=group: c.delete_dataset_group(datasetGroupArn=group)]
        calls += [lambda c, i=i, group=group: c.create_solution(name=unique(f"s{i}"), datasetGroupArn=group,
                                                                recipeArn="arn:aws:personalize:::recipe/"
                                                                "aws-popularity-count") for i in range(6)]
        calls += [lambda c, group=group: c.create_event_tracker(name=unique("t"), datasetGroupArn=group)]
        outcomes = race(server, calls)
        assert None in outcomes and not {"InternalFailure", "InternalServerError"} & set(outcomes), outcomes
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT kind, status FROM resources WHERE arn = :g OR dataset_group_arn = :g"),
                                {"g": group}).all()
        engine.dispose()
        statuses = {kind: status for kind, status in rows}
        if statuses.get("dataset_group", "DELETE PENDING") == "DELETE PENDING":  # the delete won: no child added
            assert set(statuses) <= {"dataset_group"}, rows
        else:  # a create won: the delete was refused while children exist
            assert outcomes["ResourceInUseException"] >= 1, outcomes
