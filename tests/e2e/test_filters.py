"""Filters through boto3 against live campaigns: every returned item is checked independently, lists stay full."""

from __future__ import annotations

import csv
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from tests.e2e.test_training import make_group, train
from tests.e2e.util import wait_status


@pytest.fixture(scope="module")
def world(personalize, import_root: Path) -> dict:  # type: ignore[no-untyped-def]
    folder = import_root / "filters"
    group = make_group(personalize, folder)
    items = {row["ITEM_ID"]: row for row in csv.DictReader((folder / "items.csv").open())}
    users = {row["USER_ID"]: row for row in csv.DictReader((folder / "users.csv").open())}
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in csv.DictReader((folder / "interactions.csv").open()):
        seen[(row["USER_ID"], row["EVENT_TYPE"])].add(row["ITEM_ID"])
    campaigns = {}
    for recipe in ("aws-user-personalization", "aws-sims"):
        version = train(personalize, group, recipe)
        arn = personalize.create_campaign(name=f"flt-{uuid.uuid4().hex[:8]}",
                                          solutionVersionArn=version["solutionVersionArn"])["campaignArn"]
        wait_status(lambda arn=arn: personalize.describe_campaign(campaignArn=arn), "campaign", timeout=300)
        campaigns[recipe] = arn
    return {"group": group, "items": items, "users": users, "seen": seen, "campaigns": campaigns}


def make_filter(personalize, world: dict, expression: str) -> str:  # type: ignore[no-untyped-def]
    arn = personalize.create_filter(name=f"f-{uuid.uuid4().hex[:8]}", datasetGroupArn=world["group"],
                                    filterExpression=expression)["filterArn"]
    wait_status(lambda: personalize.describe_filter(filterArn=arn), "filter")
    return arn


def recommend(runtime, world: dict, recipe: str, filter_arn: str, n: int, **kwargs) -> list[str]:  # type: ignore[no-untyped-def]
    response = runtime.get_recommendations(campaignArn=world["campaigns"][recipe], numResults=n,
                                           filterArn=filter_arn, **kwargs)
    return [item["itemId"] for item in response["itemList"]]


def genres(world: dict, item: str) -> set[str]:
    return set((world["items"][item]["GENRES"] or "").split("|"))


def test_genre_include_with_a_parameter(personalize, runtime, world) -> None:  # type: ignore[no-untyped-def]
    arn = make_filter(personalize, world, "INCLUDE ItemID WHERE Items.GENRES IN ($GENRE)")
    got = recommend(runtime, world, "aws-user-personalization", arn, 10, userId="u3",
                    filterValues={"GENRE": '"Comedy"'})
    assert len(got) == 10 and all("Comedy" in genres(world, i) for i in got)
    # serving keeps recent masks per filterValues: alternating values must each get their own
    all_genres = sorted({g for item in world["items"] for g in genres(world, item) if g})
    for genre in [*all_genres[:3], "Comedy", *all_genres[:3]]:
        got = recommend(runtime, world, "aws-user-personalization", arn, 5, userId="u3",
                        filterValues={"GENRE": f'"{genre}"'})
        assert got and all(genre in genres(world, i) for i in got), genre


def test_already_watched_is_excluded_and_the_list_stays_full(personalize, runtime, world) -> None:  # type: ignore[no-untyped-def]
    arn = make_filter(personalize, world, 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")')
    for user in ("u0", "u7", "u42"):
        got = recommend(runtime, world, "aws-user-personalization", arn, 25, userId=user)
        assert len(got) == 25 and not set(got) & world["seen"][(user, "watch")]


def test_numeric_comparison(personalize, runtime, world) -> None:  # type: ignore[no-untyped-def]
    arn = make_filter(personalize, world, "INCLUDE ItemID WHERE Items.PRICE <= $MAX")
    eligible = [i for i, row in world["items"].items() if float(row["PRICE"]) <= 10]
    got = recommend(runtime, world, "aws-user-personalization", arn, 20, userId="u5", filterValues={"MAX": "10"})
    assert len(got) == min(20, len(eligible))
    assert all(float(world["items"][i]["PRICE"]) <= 10 for i in got)


def test_current_item_on_a_related_items_campaign(personalize, runtime, world) -> None:  # type: ignore[no-untyped-def]
    arn = make_filter(personalize, world, "INCLUDE ItemID WHERE Items.GENRES IN CurrentItem.GENRES")
    for item in ("i1", "i8", "i30"):
        got = recommend(runtime, world, "aws-sims", arn, 10, itemId=item)
        assert got and all(genres(world, i) & genres(world, item) for i in got)


def test_if_current_user_gates_the_expression(personalize, runtime, world) -> None:  # type: ignore[no-untyped-def]
    arn = make_filter(personalize, world,
                      'EXCLUDE ItemID WHERE Items.GENRES IN ("Horror") IF CurrentUser.MEMBERSHIP = "basic"')
    basic = [u for u, row in world["users"].items() if row["MEMBERSHIP"] == "basic"][:3]
    gold = [u for u, row in world["users"].items() if row["MEMBERSHIP"] == "gold"]
    for user in basic:
        got = recommend(runtime, world, "aws-user-personalization", arn, 50, userId=user)
        assert len(got) == 50 and not any("Horror" in genres(world, i) for i in got)
    horror_fan = next(u for u in gold if int(u[1:]) % 6 == 3)  # users u3, u9, ... are in the Horror cluster
    got = recommend(runtime, world, "aws-user-personalization", arn, 50, userId=horror_fan)
    assert any("Horror" in genres(world, i) for i in got)


def test_chained_include_and_exclude(personalize, runtime, world) -> None:  # type: ignore[no-untyped-def]
    arn = make_filter(personalize, world, 'INCLUDE ItemID WHERE Items.GENRES IN ("Drama", "Comedy") | '
                                          'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")')
    user = "u2"
    eligible = [i for i in world["items"] if genres(world, i) & {"Drama", "Comedy"}
                and i not in world["seen"][(user, "click")]]
    got = recommend(runtime, world, "aws-user-personalization", arn, 25, userId=user)
    assert len(got) == min(25, len(eligible))
    assert set(got) <= set(eligible)


def test_missing_include_parameter_is_an_error(personalize, runtime, world) -> None:  # type: ignore[no-untyped-def]
    arn = make_filter(personalize, world, "INCLUDE ItemID WHERE Items.GENRES IN ($GENRE)")
    with pytest.raises(runtime.exceptions.InvalidInputException) as exc:
        recommend(runtime, world, "aws-user-personalization", arn, 10, userId="u1")
    assert "GENRE" in str(exc.value)
