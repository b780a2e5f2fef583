"""The compiled request-path kernels against the rules they implement (and numpy's top-k)."""

from __future__ import annotations

import numpy as np
import pytest

from tastemaker.serving import compiled


def reference_top_k(scores: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[int]:
    """Best first, ties by lower index: a full stable sort."""
    order = np.lexsort((np.arange(scores.size), -scores))
    if mask is not None:
        order = order[mask[order]]
    return order[:k].tolist()


@pytest.mark.parametrize("seed", range(5))
def test_top_k_small_matches_numpy_top_k_with_ties_and_masks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 20, 300).astype(np.float32)  # many ties: the lower index must come first
    mask = rng.random(300) < 0.4
    for k in (1, 25, 299, 400):
        assert compiled.top_k_small(scores, k, np.zeros(0, bool)).tolist() == reference_top_k(scores, k)
        assert compiled.top_k_small(scores, k, mask).tolist() == reference_top_k(scores, k, mask)
    frozen = mask.copy()
    frozen.setflags(write=False)  # cached filter masks are read-only
    assert compiled.top_k_small(scores, 25, frozen).tolist() == reference_top_k(scores, 25, mask)
    assert compiled.top_k_small(scores, 5, np.zeros(300, bool)).tolist() == []
    assert compiled.top_k_small(scores, 0, mask).tolist() == []


def explore(picked: list[int], best: list[int], rest: list[int], n: int, seed: int = 0,
            allowed: np.ndarray | None = None, blocked: list[int] = ()) -> list[int]:  # type: ignore[assignment]
    draws = np.random.default_rng(seed).random(compiled.draws_needed(n))
    return compiled.explore_slots(np.array(picked, np.int64), np.array(best, np.int64), np.array(rest, np.int64),
                                  np.zeros(0, bool) if allowed is None else allowed, np.array(blocked, np.int64),
                                  n, draws).tolist()


def test_exploration_replaces_the_tail_keeping_the_exploit_order() -> None:
    picked = list(range(10))
    for seed in range(20):
        out = explore(picked, list(range(100, 200)), list(range(200, 300)), 3, seed)
        assert len(out) == 10 and len(set(out)) == 10
        assert [p for p in out if p < 10] == list(range(7))  # the 3 lowest-ranked exploit items make room
        assert all(100 <= p < 200 for p in out if p >= 10)  # the young-and-cold pool comes first


def test_exploration_spreads_over_positions_and_pool_members() -> None:
    spots, members = set(), set()
    for seed in range(200):
        out = explore(list(range(10)), list(range(100, 120)), [], 2, seed)
        spots.update(k for k, p in enumerate(out) if p >= 100)
        members.update(p for p in out if p >= 100)
    assert spots == set(range(10))  # anywhere, first slot included
    assert members == set(range(100, 120))  # a small pool is shuffled: every member can come


def test_exploration_respects_allowed_taken_and_blocked_items() -> None:
    allowed = np.zeros(400, bool)
    allowed[[150, 250, 251]] = True
    for seed in range(20):
        # a large pool (rejection sampling: may miss) and a small one (shuffled: finds the one usable item);
        # only allowed items that are neither picked nor blocked come
        out = explore([5, 150, 7], list(range(100, 200)), list(range(245, 255)), 2, seed, allowed, blocked=[251])
        assert out.count(150) == 1 and 251 not in out
        assert sorted(p for p in out if p >= 200) == [250]
        big = explore([5, 150, 7], list(range(100, 200)), list(range(200, 300)), 2, seed, allowed, blocked=[251])
        assert big.count(150) == 1 and set(big) - {5, 150, 7} <= {250}
    # nothing usable: the exploit list is returned as it was
    assert explore([1, 2, 3], [1, 2], [3], 2) == [1, 2, 3]


def test_exploration_falls_back_to_the_second_pool_and_is_deterministic_for_given_draws() -> None:
    out = explore(list(range(6)), [100], list(range(200, 230)), 3, seed=4)
    assert 100 in out and sum(p >= 200 for p in out) == 2
    assert explore(list(range(6)), [100], list(range(200, 230)), 3, seed=4) == out


def test_compile_kernels_readies_the_kernels_a_mapped_model_calls() -> None:
    """`make install` runs compile_kernels so that a new installation's first GetRecommendations finds the serving
    kernels in numba's cache: they must be compiled for read-only arrays (a memory-mapped model's), not only for
    the writable ones a test or a training makes."""
    from tastemaker.recipes import kernels
    from tastemaker.serving import fused
    from tastemaker.serving.deploy import compile_kernels

    compile_kernels()
    for dispatcher in (fused.user_state, fused.pick, fused.finish, kernels.score_items):
        arrays = [arg for sig in dispatcher.signatures for arg in sig if hasattr(arg, "mutable")]
        assert any(not arg.mutable for arg in arrays), dispatcher.__name__


def test_make_install_compiles_the_serving_kernels() -> None:
    """The install step that calls it (a new installation's first GetRecommendations waited ~25 s without it)."""
    from pathlib import Path

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    install = makefile.split("$(STAMP):", 1)[1].split("\ninstall:", 1)[0]
    assert "$(BIN)/tastemaker compile-kernels" in install


def test_the_compile_kernels_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`tastemaker compile-kernels`: the step for installs made without `make install` (pip, an image build)."""
    from tastemaker.cli.main import main
    from tastemaker.recipes import kernels

    assert main(["compile-kernels"]) == 0
    assert "serving kernels compiled" in capsys.readouterr().out
    assert any(not arg.mutable for sig in kernels.score_items.signatures for arg in sig if hasattr(arg, "mutable"))
