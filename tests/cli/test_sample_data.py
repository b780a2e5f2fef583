"""The generated quickstart data: Personalize-valid schemas and CSVs with the structure a learner can find."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from tastemaker.cli.sample_data import CATEGORIES, DOMAINS, generate
from tastemaker.data.schemas import check_schema_for_dataset, parse_schema

SIZE = {"users": 300, "items": 200, "interactions": 6000}


def read(path: Path) -> dict[str, list]:
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={"USER_ID": "string", "ITEM_ID": "string"}, strings_can_be_null=True))
    return {name: table.column(name).to_pylist() for name in table.column_names}


@pytest.fixture(scope="module", params=DOMAINS)
def data(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return generate(tmp_path_factory.mktemp(request.param), domain=request.param, **SIZE)


def test_schemas_pass_the_servers_dataset_rules_and_match_the_csv_headers(data) -> None:  # type: ignore[no-untyped-def]
    domain = None if data.domain == "custom" else data.domain
    for kind, schema in data.schemas.items():
        check_schema_for_dataset(parse_schema(json.dumps(schema)), kind, domain)
        header = data.paths[kind].read_text().splitlines()[0].split(",")
        assert header == [f["name"] for f in schema["fields"]]
        on_disk = json.loads((data.folder / f"{kind.lower()}.schema.json").read_text())
        assert on_disk == schema


def test_rows_are_consistent_with_items_users_and_time(data) -> None:  # type: ignore[no-untyped-def]
    interactions, items, users = (read(data.paths[k]) for k in ("Interactions", "Items", "Users"))
    assert len(set(items["ITEM_ID"])) == SIZE["items"] and len(set(users["USER_ID"])) == SIZE["users"]
    assert set(interactions["ITEM_ID"]) <= set(items["ITEM_ID"])
    assert set(interactions["USER_ID"]) <= set(users["USER_ID"])
    assert len(interactions["USER_ID"]) == data.interactions >= SIZE["interactions"]
    assert set(interactions["EVENT_TYPE"]) == set(data.event_types)
    created = dict(zip(items["ITEM_ID"], items["CREATION_TIMESTAMP"], strict=True))
    assert all(t >= created[i] for i, t in zip(interactions["ITEM_ID"], interactions["TIMESTAMP"], strict=True))
    assert all(text and len(text) > 20 for text in items["PRODUCT_DESCRIPTION"])
    if data.domain == "ECOMMERCE":
        assert all(p > 0 for p in items["PRICE"])
        assert all(l2 in CATEGORIES[l1] for l1, l2 in zip(items["CATEGORY_L1"], items["CATEGORY_L2"], strict=True))
        assert Counter(interactions["EVENT_TYPE"])["Purchase"] < Counter(interactions["EVENT_TYPE"])["View"] / 4


def test_popularity_is_skewed_and_users_have_a_taste(data) -> None:  # type: ignore[no-untyped-def]
    interactions = read(data.paths["Interactions"])
    counts = Counter(interactions["ITEM_ID"]).most_common()
    top_tenth = sum(n for _, n in counts[: SIZE["items"] // 10])
    assert top_tenth > 0.3 * len(interactions["ITEM_ID"])
    in_favourite = Counter()
    per_user = Counter(interactions["USER_ID"])
    for user, item in zip(interactions["USER_ID"], interactions["ITEM_ID"], strict=True):
        in_favourite[user] += data.item_cluster[item] == data.user_cluster[user]
    share = sum(in_favourite[u] / per_user[u] for u in per_user) / len(per_user)
    assert share > 0.55


def test_a_taste_aware_ranking_beats_popularity_on_each_users_last_interaction(data) -> None:  # type: ignore[no-untyped-def]
    interactions = read(data.paths["Interactions"])
    history: dict[str, list[str]] = {}
    for user, item in zip(interactions["USER_ID"], interactions["ITEM_ID"], strict=True):
        history.setdefault(user, []).append(item)  # rows are sorted by user, then time
    train = Counter(i for items in history.values() for i in items[:-1])
    global_top = [i for i, _ in train.most_common(10)]
    by_cluster: dict[str, list[str]] = {}
    for item, _ in train.most_common():
        by_cluster.setdefault(data.item_cluster[item], []).append(item)
    popular_hits = taste_hits = 0
    for items in history.values():
        last, past = items[-1], items[:-1]
        popular_hits += last in global_top
        favourite = Counter(data.item_cluster[i] for i in past).most_common(1)[0][0]
        taste_hits += last in by_cluster[favourite][:10]
    assert taste_hits > 1.5 * popular_hits


def test_same_seed_same_files_and_unknown_domain_refused(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", users=50, items=40, interactions=500, seed=3)
    second = generate(tmp_path / "b", users=50, items=40, interactions=500, seed=3)
    other = generate(tmp_path / "c", users=50, items=40, interactions=500, seed=4)
    assert first.paths["Interactions"].read_bytes() == second.paths["Interactions"].read_bytes()
    assert first.paths["Interactions"].read_bytes() != other.paths["Interactions"].read_bytes()
    with pytest.raises(ValueError, match="unknown domain"):
        generate(tmp_path / "d", domain="RETAIL")
