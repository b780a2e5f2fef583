"""aws-semantic-similarity: related items by the meaning of the item name and textual fields.

Each item's text is weighted with TF-IDF and embedded by latent semantic analysis (a truncated SVD of the
TF-IDF matrix, learned from the catalogue's own text; no downloaded weights). Similarity blends the lexical
cosine (shared words) with the latent cosine (items whose words occur in the same contexts come out close
without sharing a word). The latent share is chosen per catalogue from LATENT_SHARE_CANDIDATES by how well
the similarities predict held-out users' next items when there are interactions (sims.related_validation),
else LATENT_SHARE: short titles alone give LSA little to learn (MovieLens picks 0), richer text more. Okapi BM25 weighting was tried and dropped: for
document-to-document similarity its sharper idf lets rare tokens (numbers, names) outweigh topic words.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from tastemaker.recipes import register_recipe
from tastemaker.recipes.base import Progress, Recipe, ShouldStop, TrainedModel, register_model_class, report
from tastemaker.recipes.common import unit_max
from tastemaker.recipes.features import content_scores, item_text, latent_semantics, tfidf
from tastemaker.recipes.sims import POPULARITY_TIE_BREAK, csr_arrays, csr_from_arrays, related_validation
from tastemaker.recipes.training_data import InsufficientDataError, TrainingData

LATENT_SHARE = 0.25  # weight of the latent (LSA) cosine beside the lexical (TF-IDF) cosine without interactions
LATENT_SHARE_CANDIDATES = (0.0, 0.25, 0.5)  # with interactions: the one that best predicts held-out next items


@register_model_class
class SemanticModel(TrainedModel):
    """TF-IDF rows and LSA vectors per item; related items by their blended cosine (unknown item -> popularity)."""

    model_kind: ClassVar[str] = "semantic"

    def score_items(self, item_index: np.ndarray) -> np.ndarray:
        item_index = np.asarray(item_index, dtype=np.int64)
        features = csr_from_arrays(self.arrays, "feat", (self.n_items, int(self.settings["n_features"])))
        share = np.float32(self.settings.get("latent_share", 0.0))  # models saved before LSA: lexical only
        scores = (1.0 - share) * unit_max(content_scores(features, item_index))
        latent = np.asarray(self.arrays.get("latent", np.zeros((self.n_items, 0))), np.float32)
        if latent.shape[1] and share > 0:
            known = item_index >= 0
            similarity = latent[np.where(known, item_index, 0)] @ latent.T
            similarity[~known] = 0.0
            scores += share * unit_max(np.maximum(similarity, 0.0))
        scores += np.float32(POPULARITY_TIE_BREAK) * unit_max(self.item_popularity)
        rows = np.nonzero(item_index >= 0)[0]
        scores[rows, item_index[rows]] = -1.0
        return scores.astype(np.float32)


def choose_latent_share(data: TrainingData, features: sp.csr_matrix, latent: np.ndarray, seed: int) -> float:
    """The LATENT_SHARE_CANDIDATES value with the best NDCG@10 on the held-out users' next items; LATENT_SHARE
    when the data has too few interactions to tell (ties: the smaller share)."""
    validation = related_validation(data, seed)
    if validation is None or not latent.shape[1]:
        return LATENT_SHARE
    scored = []
    for share in LATENT_SHARE_CANDIDATES:
        model = SemanticModel(
            recipe_name="aws-semantic-similarity", recipe_type="RELATED_ITEMS", item_ids=data.item_ids,
            user_ids=validation.train.user_ids, item_popularity=validation.train.unique_user_counts(),
            item_first_seen=data.item_first_seen(), arrays={**csr_arrays("feat", features), "latent": latent},
            settings={"n_features": int(features.shape[1]), "latent_share": share},
        )
        scored.append((validation.ndcg(model), -share))
    return -max(scored)[1]


@register_recipe
class SemanticSimilarity(Recipe):
    name = "aws-semantic-similarity"
    returns_metadata = True
    recipe_type = "RELATED_ITEMS"
    description = "Recommends items whose name and descriptions are closest in meaning to a given item's."
    feature_transformation = "aws-semantic-similarity"
    supports_hpo = False
    needs_interactions = False
    needs_items = True

    def fit(self, data: TrainingData, params: dict[str, str], *, seed: int = 0,
            progress: Progress | None = None, should_stop: ShouldStop | None = None) -> TrainedModel:
        typed = self.validate_hyperparameters(params)
        report(progress, should_stop, 0.0)
        meta = data.item_metadata
        if meta is None or not meta.textual:
            raise InsufficientDataError(
                "Create failed. aws-semantic-similarity needs an Items dataset with an item name field "
                "(\"itemName\": true) and at least one textual field (\"textual\": true)."
            )
        features = tfidf(item_text(meta, data.n_items))
        report(progress, should_stop, 0.5)
        latent = latent_semantics(features)
        share = choose_latent_share(data, features, latent, seed)
        report(progress, should_stop, 0.9)
        model = SemanticModel(
            recipe_name=self.name, recipe_type=self.recipe_type, item_ids=data.item_ids, user_ids=data.user_ids,
            item_popularity=data.unique_user_counts(), item_first_seen=data.item_first_seen(), params=typed,
            arrays={**csr_arrays("feat", features), "latent": latent},
            settings={"n_features": int(features.shape[1]), "latent_share": share},
        )
        report(progress, should_stop, 1.0)
        return model
