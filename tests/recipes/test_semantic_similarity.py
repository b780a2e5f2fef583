"""aws-semantic-similarity: latent semantic analysis relates items that share no word; the latent share is chosen."""

from __future__ import annotations

import numpy as np

from tastemaker.recipes import get_recipe
from tastemaker.recipes.features import latent_semantics, tfidf
from tastemaker.recipes.semantic_similarity import LATENT_SHARE, LATENT_SHARE_CANDIDATES


def test_latent_semantics_relates_documents_through_the_words_they_share_with_others():
    texts = np.array(["red apple orchard", "apple orchard harvest fruit", "fruit harvest basket",
                      "steel engine bolt", "engine bolt gearbox", "gearbox steel oil"] * 3)
    lexical = tfidf(texts, max_df=1.0)
    latent = latent_semantics(lexical, dimensions=2)  # two topics in this catalogue
    assert (lexical[0] @ lexical[2].T).toarray()[0, 0] == 0.0  # no shared word
    assert float(latent[0] @ latent[2]) > 0.5  # linked through "apple orchard harvest fruit"
    assert abs(float(latent[0] @ latent[4])) < 0.1  # and not to the machine parts


def test_the_latent_share_is_chosen_with_interactions_and_fixed_without(training_data):
    model = get_recipe("aws-semantic-similarity").fit(training_data, {})
    assert model.settings["latent_share"] in LATENT_SHARE_CANDIDATES
    no_events = training_data.subset_events(np.zeros(training_data.n_interactions, bool))
    cold = get_recipe("aws-semantic-similarity").fit(no_events, {})
    assert cold.settings["latent_share"] == LATENT_SHARE
    assert cold.arrays["latent"].shape[0] == training_data.n_items
