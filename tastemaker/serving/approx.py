"""Approximate top-k for large ALS catalogues: HNSW candidates + the model's exact score on those candidates."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.realtime.inline import slow_step
from tastemaker.recipes import kernels
from tastemaker.serving import compiled
from tastemaker.serving.ann import ann_available

log = logging.getLogger(__name__)

# Where the candidate path starts. Measured (bench/serving.py, 64 factors, batches of 16, one core): exact
# scoring costs ~2.3 ms per user at 100,000 items and grows linearly with the catalogue; the candidate path
# costs ~1 ms per user almost independently of it, so they cross near 50,000 items.
ANN_MIN_ITEMS = 50_000
# Items taken from the index per user (ef = this). bench/serving.py's sweep at 100k items: recall@25 against
# exact scoring 0.9967 at 200, 0.9965 at 100, 0.9963 at 64 (the head, history and transitions supply the
# rest), while the index query costs 359 / 143 / 60 us.
ANN_CANDIDATES = 64
HEAD_ITEMS = 100  # the trending / cold-start head, always scored
SAMPLE_ITEMS = 128  # a fixed random sample of items, scored to estimate the softmax mass outside the candidates
INDEX_M, INDEX_EF_CONSTRUCTION = 16, 100


@dataclass
class Candidates:
    """One user's scored candidates (sorted unique catalogue positions) for the approximate path."""

    items: np.ndarray  # int64
    scores: np.ndarray  # float32, the model's score at each item
    in_sample: np.ndarray  # bool: the item is (only) in the random sample, not found by the index/transitions/head
    merged_history: np.ndarray  # what the model folded in (to score extra items later with the same user)
    vector: np.ndarray  # the folded-in user vector
    scale: float  # the long-term scale the scores used
    short_term: tuple[np.ndarray, np.ndarray]  # (rows the transitions reach, their short-term values)

    def scores_at(self, model: Any, positions: np.ndarray) -> np.ndarray:
        """The model's scores at these item rows on this user's scale (scoring the ones not yet scored)."""
        positions = np.asarray(positions, dtype=np.int64)
        if not len(self.merged_history):  # cold start: the model's cold-start scores
            return np.asarray(model.arrays["cold_scores"])[positions].astype(np.float32)
        reached, values = self.short_term
        settings = model.settings
        return kernels.scores_at(self.items, self.scores, positions, model.arrays["item_factors"],  # type: ignore[no-any-return]
                                 self.vector, self.scale, reached, values,
                                 float(settings.get("trend_weight", 0.0) or 0.0), model.arrays["recent_popularity"],
                                 np.asarray(self.merged_history, dtype=np.int64),
                                 bool(settings.get("demote_history")))


class CandidateScorer:
    """Per loaded model: the HNSW index over item factors (built in the background, saved in the cache dir)
    and the batch compute() that turns (user, history, context) queries into Candidates."""

    def __init__(self, model: Any, cache_dir: Path | None, candidates: int = ANN_CANDIDATES,
                 head_items: int = HEAD_ITEMS, sample_items: int = SAMPLE_ITEMS) -> None:
        self.model = model
        self.n_candidates = min(candidates, model.n_items)
        self.index: Any = None
        self.fused_plan: Any = None  # tastemaker.serving.fastpath's Plan for this scorer and index, made on first use
        self._cache_dir = cache_dir
        self._started = False
        self._lock = threading.Lock()
        rng = np.random.default_rng(7)
        n = model.n_items
        trend = np.asarray(model.arrays["recent_popularity"])
        cold = np.asarray(model.arrays["cold_scores"])
        head = max(1, min(head_items, n))
        self.head = np.unique(np.concatenate([
            np.argpartition(-trend, head - 1)[:head], np.argpartition(-cold, head - 1)[:head]])).astype(np.int64)
        self.sample = np.sort(rng.choice(n, size=min(sample_items, n), replace=False)).astype(np.int64)

    # --- the index -----------------------------------------------------------------------------------
    def ready(self) -> bool:
        """True once the index is usable; the first call starts building (or loading) it in the background."""
        if self.index is not None:
            return True
        with self._lock:
            if not self._started:
                self._started = True
                threading.Thread(target=self._build, name="ann-index", daemon=True).start()
        return False

    def build_now(self) -> None:
        with self._lock:
            self._started = True
        self._build()

    def load_saved(self) -> None:
        """Load the index now if its file exists (the deploy job saves it); otherwise start building it in the
        background, as a first request would (building can take minutes: nobody waits for it)."""
        if self.index is not None:
            return
        path = self._index_path(np.asarray(self.model.arrays["item_factors"], dtype=np.float32))
        if path is not None and (path.exists() or _legacy(path).exists()):
            self.build_now()
        else:
            self.ready()

    def _build(self) -> None:
        from tastemaker.serving.ann import FactorIndex

        try:
            factors = np.asarray(self.model.arrays["item_factors"], dtype=np.float32)
            path = self._index_path(factors)
            started = time.perf_counter()
            if path is not None and path.exists():
                index = FactorIndex.load(path, ef=self.n_candidates)
            elif path is not None and _legacy(path).exists():  # saved by an earlier release: converted once
                index = FactorIndex.load_legacy(_legacy(path), factors.shape[1], factors.shape[0],
                                                ef=self.n_candidates)
                _save(index, path)
            else:
                index = FactorIndex(factors, m=INDEX_M, ef_construction=INDEX_EF_CONSTRUCTION,
                                    ef=self.n_candidates, threads=os.cpu_count() or 1)
                index.index.set_num_threads(1)
                if path is not None:
                    _save(index, path)
            self.index = index
            log.info("ANN index over %d items ready in %.1f s", factors.shape[0], time.perf_counter() - started)
        except Exception:  # the exact path keeps serving
            log.exception("building the ANN index failed; serving stays exact")

    def index_bytes(self) -> int:
        """Size of the saved index (what every worker process loads), 0 when none is saved."""
        path = self._index_path(np.asarray(self.model.arrays["item_factors"], dtype=np.float32))
        return _folder_bytes(path) if path is not None else 0

    def _index_path(self, factors: np.ndarray) -> Path | None:
        return None if self._cache_dir is None else index_path(self._cache_dir, factors)

    # --- scoring -------------------------------------------------------------------------------------
    def compute(self, queries: Sequence[Any]) -> list[Candidates]:
        """Batcher compute(): queries are (user row, history item indices, context). Per user: two compiled
        calls around one index query (fold-in and transitions; merge of the candidate sources and scoring)."""
        model = self.model
        users = np.asarray([q[0] for q in queries], dtype=np.int64)
        out = []
        for history in model.merged_histories(users, [q[1] for q in queries]):
            rows = np.asarray(history, dtype=np.int64)
            state = model.serving_state(rows)
            found = self.index.query(state[0][None, :], self.n_candidates)[0] if self.index is not None else _NONE
            items, in_sample, scores, scale = model.merge_and_score(found, self.head, rows, state, self.sample)
            out.append(Candidates(items, scores, in_sample, history, state[0], scale, (state[1], state[2])))
        return out


_NONE = np.zeros(0, np.int64)


def index_path(cache_dir: Path, factors: np.ndarray) -> Path:
    """Where the index over these item factors is saved (a folder, FactorIndex.save), named by a digest of them."""
    digest = hashlib.sha1(np.ascontiguousarray(factors[:: max(1, factors.shape[0] // 1000)]).tobytes())
    digest.update(f"{factors.shape}:{INDEX_M}:{INDEX_EF_CONSTRUCTION}".encode())
    return cache_dir / "serving" / "ann" / f"{digest.hexdigest()[:24]}.index"


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir()) if path.exists() else 0


def uses_index(model: Any) -> bool:
    """Whether the model is served through the candidate index (large ALS catalogues, hnswlib installed)."""
    return bool(model.supports_candidates and model.n_items >= ANN_MIN_ITEMS and ann_available())


def saved_index_bytes(services: Any, model: Any) -> int:
    """The size of the model's saved index, 0 when it has none (or is served exactly); builds nothing. What a
    deploy job in a jobs-only process reports for a model whose index an earlier deploy saved, without setting
    up a scorer (its head and sample) that it would drop at once."""
    if not uses_index(model):
        return 0
    return _folder_bytes(index_path(services.settings.cache_dir,
                                    np.asarray(model.arrays["item_factors"], dtype=np.float32)))


def _save(index: Any, path: Path) -> None:
    """Save under a temporary name and rename into place (another process, or another thread of this one, may be
    saving the same index: the name is the process's and the thread's own)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f"{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(temp, ignore_errors=True)
    index.save(temp)
    try:
        temp.rename(path)
    except OSError:  # another process saved it first
        shutil.rmtree(temp, ignore_errors=True)


def _legacy(path: Path) -> Path:
    """Where releases before FactorIndex.save kept the same index (hnswlib's save_index file; left in place)."""
    return path.with_suffix(".hnsw")


def softmax_with_tail(cand: Candidates, allowed: np.ndarray | None, n_allowed_total: int,
                      picked_scores: np.ndarray) -> np.ndarray:
    """exp(score) / (sum over allowed candidates + estimated mass of the allowed items never scored).

    The items outside the candidates are estimated by the fixed random sample (scored exactly): their count
    times the mean exp(score) of the allowed sample items. Without a usable sample they count as zero.
    """
    return kernels.softmax_with_tail(cand.scores, cand.in_sample, _NO_MASK if allowed is None else allowed,  # type: ignore[no-any-return]
                                     n_allowed_total, np.asarray(picked_scores, dtype=np.float32))


_NO_MASK = np.zeros(0, dtype=bool)


class ScorerRegistry:
    """model prefix -> CandidateScorer (or None when the model/catalogue does not use the approximate path)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scorers: dict[str, CandidateScorer | None] = {}

    def forget(self, prefix: str) -> None:
        with self._lock:
            self._scorers.pop(prefix, None)

    def get(self, prefix: str, model: Any, services: Any) -> CandidateScorer | None:
        if prefix in self._scorers:
            return self._scorers[prefix]
        with self._lock:
            if prefix not in self._scorers:
                slow_step("candidate scorer set-up")
                self._scorers[prefix] = CandidateScorer(model, services.settings.cache_dir) if uses_index(model) \
                    else None
            return self._scorers[prefix]


def top_from_candidates(cand: Candidates, k: int, allowed: np.ndarray | None) -> np.ndarray:
    """Catalogue positions of the k best allowed candidates, best first (ties: lower position first)."""
    return cand.items[compiled.top_k_small(cand.scores, k, _NO_MASK if allowed is None else allowed)]


def recall_against_exact(scorer: CandidateScorer, users: np.ndarray, k: int = 25,
                         masks: Sequence[np.ndarray | None] | None = None) -> float:
    """Mean recall@k of the candidate path against exact full-catalogue scoring (optionally under masks)."""
    from tastemaker.serving.topk import top_k

    model = scorer.model
    empty = [np.zeros(0, np.int32)] * len(users)
    exact = model.score_users(np.asarray(users), empty)
    approx = scorer.compute([(int(u), np.zeros(0, np.int32), None) for u in users])
    hits = []
    for row in range(len(users)):
        mask = masks[row] if masks is not None else None
        truth = top_k(exact[row], k, mask)
        got = top_from_candidates(approx[row], k, None if mask is None else mask[approx[row].items])
        hits.append(len(set(truth.tolist()) & set(got.tolist())) / max(len(truth), 1))
    return float(np.mean(hits))


def warm_index(services: Any, loaded: Any) -> None:
    """The model's candidate index loaded from its saved file when it has one (see CandidateScorer.load_saved)."""
    scorer = services.serving.scorers.get(loaded.prefix, loaded.model, services)
    if scorer is not None:
        scorer.load_saved()


def prepare_index(services: Any, loaded: Any) -> int:
    """Build (or load) the candidate index of a model served through the approximate path, in the deploy job
    rather than on the first requests; returns the saved index's size in bytes (0: the model is served exactly)."""
    scorer = services.serving.scorers.get(loaded.prefix, loaded.model, services)
    if scorer is None:
        return 0
    if scorer.index is None:
        scorer.build_now()
    return scorer.index_bytes()
