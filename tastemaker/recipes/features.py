"""Item content features: TF-IDF over text and one-hot categorical values, as L2-normalised sparse rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from tastemaker.recipes.training_data import Metadata

MIN_TOKEN_LENGTH = 2
MAX_DOCUMENT_FREQUENCY = 0.5  # words in more than half of the items say nothing about similarity


def tfidf(texts: np.ndarray, max_df: float = MAX_DOCUMENT_FREQUENCY) -> sp.csr_matrix:
    """(n_docs, n_terms) L2-normalised TF-IDF (sublinear tf, smoothed idf); vectorised with pyarrow."""
    n_docs = len(texts)
    if n_docs == 0:
        return sp.csr_matrix((0, 0), dtype=np.float32)
    lowered = pc.utf8_lower(pa.array(np.asarray(texts, dtype=str)))
    tokens = pc.split_pattern_regex(lowered, r"[^\w]+")
    lengths = pc.list_value_length(tokens).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(tokens)
    docs = np.repeat(np.arange(n_docs), lengths)
    encoded = pc.dictionary_encode(flat)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    vocabulary = encoded.dictionary.to_numpy(zero_copy_only=False).astype(str)
    good_term = np.char.str_len(vocabulary) >= MIN_TOKEN_LENGTH
    keep = good_term[codes]
    counts = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (docs[keep], codes[keep])), shape=(n_docs, len(vocabulary))
    )
    counts.sum_duplicates()
    document_frequency = np.bincount(counts.indices, minlength=len(vocabulary))
    useful = (document_frequency > 0) & (document_frequency <= max(1, max_df * n_docs))
    if n_docs < 4:  # too few documents for a frequency cut-off
        useful = document_frequency > 0
    counts = counts[:, np.nonzero(useful)[0]].tocsr()
    idf = np.log((1.0 + n_docs) / (1.0 + document_frequency[useful])) + 1.0
    counts.data = (1.0 + np.log(counts.data)).astype(np.float32)
    return l2_normalise((counts @ sp.diags(idf.astype(np.float32))).tocsr())


def l2_normalise(mat: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1)).ravel())
    return (sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ mat).astype(np.float32).tocsr()


def item_text(metadata: Metadata, n_items: int) -> np.ndarray:
    """Each item's textual fields (item name first) joined into one document."""
    text = np.full(n_items, "", dtype=object)
    columns = list(metadata.textual)
    if metadata.item_name_column in columns:
        columns.remove(metadata.item_name_column)
        columns.insert(0, metadata.item_name_column)
    for column in columns:
        text = text + " " + metadata.textual[column].astype(object)
    return text.astype(str)


def content_features(metadata: Metadata | None, n_items: int, include_text: bool = True) -> sp.csr_matrix:
    """Items x (categorical values + text terms), each block weighted equally and rows L2-normalised."""
    blocks = []
    if metadata is not None:
        for matrix, _values in metadata.categorical.values():
            blocks.append(l2_normalise(matrix.astype(np.float32)))
        if include_text and metadata.textual:
            blocks.append(tfidf(item_text(metadata, n_items)))
    if not blocks:
        return sp.csr_matrix((n_items, 0), dtype=np.float32)
    return l2_normalise(sp.hstack(blocks, format="csr"))


def content_scores(features: sp.csr_matrix, item_index: np.ndarray) -> np.ndarray:
    """(B, n_items) cosine similarity of the query items' content to every item (unknown items: zeros)."""
    item_index = np.asarray(item_index, dtype=np.int64)
    out = np.zeros((len(item_index), features.shape[0]), np.float32)
    known = np.nonzero(item_index >= 0)[0]
    if known.size and features.shape[1]:
        out[known] = (features[item_index[known]] @ features.T).toarray()
    return out
