"""aws-semantic-similarity: word embeddings learned from the catalogue's co-interactions reach items that share no
word with the query, new items included."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tastemaker.recipes import get_recipe
from tastemaker.recipes.training_data import TrainingConfig, TrainingData

# Three worlds; in each, two halves of the catalogue use different words but are taken by the same users.
FIRST_WORDS = ("castle", "ocean", "desert")
SECOND_WORDS = ("dragon", "pirate", "camel")
PER_HALF = 20


@pytest.fixture(scope="module")
def worlds() -> TrainingData:
    rng = np.random.default_rng(5)
    ids, texts = [], []
    for world in range(3):
        for k in range(PER_HALF):
            ids += [f"a{world}_{k}", f"b{world}_{k}"]
            texts += [f"the {FIRST_WORDS[world]} tale number {k}", f"the {SECOND_WORDS[world]} saga number {k}"]
        ids.append(f"new{world}")  # no events: only its words place it
        texts.append(f"the {FIRST_WORDS[world]} tale number new")
    rows = []
    for user in range(300):
        world = user % 3
        picks = rng.choice(2 * PER_HALF, size=8, replace=False)
        for step, pick in enumerate(picks.tolist()):
            item = f"{'a' if pick < PER_HALF else 'b'}{world}_{pick % PER_HALF}"
            rows.append((f"u{user}", item, 1_000_000 + 100 * user + step))
    users, items, times = zip(*rows, strict=True)
    interactions = pa.table({"USER_ID": list(users), "ITEM_ID": list(items),
                             "TIMESTAMP": pa.array(times, pa.int64())})
    catalogue = pa.table({"ITEM_ID": ids, "TEXT": texts})
    return TrainingData.from_tables(interactions, catalogue, None, TrainingConfig())


def test_a_new_item_finds_the_items_its_words_go_with(worlds):
    model = get_recipe("aws-semantic-similarity").fit(worlds, {}, seed=0)
    assert "emb" in model.arrays
    for world in range(3):
        query = model.item_index([f"new{world}"])
        ranked = [str(model.item_ids[i]) for i in np.argsort(-model.score_items(query)[0], kind="stable")]
        # Its 40 nearest are its own world's 40 items: the "second" half shares no word with it, yet ranks above
        # every item of the other worlds (lexical cosine alone gives those all zero).
        assert {name[1] for name in ranked[:2 * PER_HALF]} == {str(world)}
        assert {name[0] for name in ranked[:2 * PER_HALF]} == {"a", "b"}


def test_without_events_only_the_words_count(worlds):
    lonely = worlds.subset_events(np.zeros(worlds.n_interactions, bool))
    model = get_recipe("aws-semantic-similarity").fit(lonely, {}, seed=0)
    assert "emb" not in model.arrays
    query = model.item_index(["new0"])
    ranked = [str(model.item_ids[i]) for i in np.argsort(-model.score_items(query)[0], kind="stable")]
    ranked = [name for name in ranked if not name.startswith("new")]  # the other new items share "tale" and "new"
    assert {name[:2] for name in ranked[:PER_HALF]} == {"a0"}  # the items sharing "castle"
