"""aws-semantic-similarity: related items by the meaning of their metadata, as embeddings learned from the catalogue.

Personalize embeds each item's text with a language model. Tastemaker downloads no weights; it learns what the
catalogue's own words mean from the catalogue itself (distributional semantics, as latent semantic analysis does,
but with co-interaction instead of co-occurrence in a document as the context):

1. Lexical vectors F: TF-IDF over the item name and textual fields, plus the categorical attribute values
   (`features.content_features`: each block L2-normalised, weighted equally). Cosine over F finds items that
   share words or attributes.
2. Learned embeddings, when the dataset group has interactions: each item's behaviour vector E is a truncated
   SVD (scipy `svds`, EMBEDDING_DIM dimensions) of the item co-occurrence matrix normalised by the square root of
   both items' counts. A ridge regression W = (F'F + RIDGE I)^-1 F'E maps the words to that space, fitted on the
   items with at least MIN_EVENT_USERS users and only over terms found in two or more items, so a word unique to
   one item cannot memorise that item's behaviour: a word moves an item only as far as it does across the other
   items that carry it. An item's embedding is F_i W, normalised: it comes from its text alone, so new items and
   items without events get one too ("Toy Story" and "Aladdin" share no word, but their words and genres sit
   where the same people's films sit).
3. Related items: LEXICAL_SHARE * cosine(F) + (1 - LEXICAL_SHARE) * cosine(embedding) (half and half), then
   popularity as a tie-break only (Personalize's rankingInfluence POPULARITY defaults to 0).

Without interactions (or with too few items to learn from) only the lexical cosine is used.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from tastemaker.recipes import register_recipe
from tastemaker.recipes.base import Progress, Recipe, ShouldStop, TrainedModel, register_model_class, report
from tastemaker.recipes.common import unit_max
from tastemaker.recipes.features import content_features, content_scores
from tastemaker.recipes.sims import POPULARITY_TIE_BREAK, cooccurrence, csr_arrays, csr_from_arrays
from tastemaker.recipes.training_data import InsufficientDataError, TrainingData

EMBEDDING_DIM = 64
RIDGE = 0.3  # on L2-normalised rows: a word found in a handful of items is shrunk towards nothing
MIN_EVENT_USERS = 5  # items with fewer users have too noisy a behaviour vector to learn words from
MIN_TERM_ITEMS = 2  # a term must be shared by this many items to get an embedding
MAX_TERMS = 4096  # the most widespread terms kept for the regression (a dense terms x terms solve)
LEXICAL_SHARE = 0.5  # 0.3 loses a third on Amazon beauty, whose next product is a variant (docs/recipes.md)


def behaviour_vectors(co: sp.csr_matrix, counts: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """(n_items, dim) SVD coordinates of the co-occurrence matrix `co` normalised by sqrt(counts) both ways."""
    scale = sp.diags(1.0 / np.sqrt(np.maximum(counts, 1.0)))
    normalised = (scale @ co @ scale).tocsr().astype(np.float64)
    start = np.random.default_rng(seed).standard_normal(normalised.shape[0])
    u, s, _ = svds(normalised, k=dim, v0=start)
    return (u * np.sqrt(np.abs(s))).astype(np.float64)


def learned_embeddings(features: sp.csr_matrix, data: TrainingData, seed: int) -> np.ndarray | None:
    """(n_items, d) unit-norm embeddings from the items' lexical vectors (module docstring, step 2), or None
    when there is nothing to learn from."""
    if data.n_interactions == 0 or features.shape[1] == 0:
        return None
    shared = np.bincount(features.indices, minlength=features.shape[1])
    terms = np.nonzero(shared >= MIN_TERM_ITEMS)[0]
    if len(terms) > MAX_TERMS:
        terms = np.sort(terms[np.argsort(-shared[terms], kind="stable")[:MAX_TERMS]])
    co, counts = cooccurrence(data)
    rows = np.nonzero(counts >= MIN_EVENT_USERS)[0]
    dim = min(EMBEDDING_DIM, rows.size // 2, features.shape[0] - 2)  # at least two fitted items per dimension
    if terms.size == 0 or dim < 2:
        return None
    target = behaviour_vectors(co, counts, dim, seed)
    words = features[:, terms].tocsr()
    fitted = words[rows]
    gram = (fitted.T @ fitted).toarray().astype(np.float64) + RIDGE * np.eye(terms.size)
    weights = np.linalg.solve(gram, np.asarray(fitted.T @ target[rows]))
    embedded = np.asarray(words @ weights)
    norms = np.linalg.norm(embedded, axis=1, keepdims=True)
    return (embedded / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@register_model_class
class SemanticModel(TrainedModel):
    """Lexical rows (`feat_*`) and, when learned, embeddings (`emb`); related items by the blended cosine
    (unknown item -> popularity)."""

    model_kind: ClassVar[str] = "semantic"

    def score_items(self, item_index: np.ndarray) -> np.ndarray:
        item_index = np.asarray(item_index, dtype=np.int64)
        features = csr_from_arrays(self.arrays, "feat", (self.n_items, int(self.settings["n_features"])))
        scores = content_scores(features, item_index)
        embeddings = self.arrays.get("emb")
        known = np.nonzero(item_index >= 0)[0]
        if embeddings is not None and known.size:
            share = np.float32(self.settings.get("lexical_share", 1.0))
            learned = np.zeros_like(scores)
            learned[known] = np.asarray(embeddings[item_index[known]]) @ np.asarray(embeddings).T
            scores = share * scores + (np.float32(1.0) - share) * learned
        scores = unit_max(scores)
        scores += np.float32(POPULARITY_TIE_BREAK) * unit_max(self.item_popularity)
        scores[known, item_index[known]] = -1.0
        return scores.astype(np.float32)


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
            progress: Progress | None = None, should_stop: ShouldStop | None = None,
            checkpoints: object = None) -> TrainedModel:  # accepted and ignored: nothing to resume
        typed = self.validate_hyperparameters(params)
        report(progress, should_stop, 0.0)
        meta = data.item_metadata
        if meta is None or not meta.textual:
            raise InsufficientDataError(
                "Create failed. aws-semantic-similarity needs an Items dataset with an item name field "
                "(\"itemName\": true) and at least one textual field (\"textual\": true)."
            )
        features = content_features(meta, data.n_items)
        report(progress, should_stop, 0.3)
        embeddings = learned_embeddings(features, data, seed)
        report(progress, should_stop, 0.9)
        arrays = csr_arrays("feat", features)
        settings: dict[str, float | int] = {"n_features": int(features.shape[1]), "lexical_share": 1.0}
        if embeddings is not None:
            arrays["emb"] = embeddings
            settings["lexical_share"] = LEXICAL_SHARE
        model = SemanticModel(
            recipe_name=self.name, recipe_type=self.recipe_type, item_ids=data.item_ids, user_ids=data.user_ids,
            item_popularity=data.unique_user_counts(), item_first_seen=data.item_first_seen(), params=typed,
            arrays=arrays, settings=settings,
        )
        report(progress, should_stop, 1.0)
        return model
