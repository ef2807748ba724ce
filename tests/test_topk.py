"""recsys.topk against a dense numpy brute force on small data.

Exact comparisons use small-integer factors, whose float32 dot products are exact,
so any difference in indices, order, tie-breaking or exclusion is a real bug.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

from src.recsys.topk import similar_items, top_k_scores

# Tiny tiles so that several query tiles, item blocks, pruning steps and both threads are exercised.
SMALL_TILES = dict(tile_queries=7, tile_items=16, n_threads=2)


def brute_force(query, items, k, exclude=None):
    """Dense reference: score desc, then item index asc; excluded -> never; padded with (-1, -inf)."""
    scores = query.astype(np.float64) @ items.astype(np.float64).T
    allowed = np.ones(scores.shape, dtype=bool)
    if exclude is not None:
        allowed &= exclude.toarray() == 0
    n_q, n_i = scores.shape
    idx = np.full((n_q, k), -1, dtype=np.int64)
    val = np.full((n_q, k), -np.inf)
    for r in range(n_q):
        cand = np.flatnonzero(allowed[r])
        order = np.lexsort((cand, -scores[r, cand]))[:k]
        idx[r, : len(order)] = cand[order]
        val[r, : len(order)] = scores[r, cand[order]]
    return idx, val


def int_factors(rng, n, f, low=-3, high=4):
    # Few distinct values -> many exact ties between different items.
    return rng.integers(low, high, size=(n, f)).astype(np.float32)


def random_exclude(rng, n_q, n_i, density):
    mask = rng.random((n_q, n_i)) < density
    return scipy.sparse.csr_matrix(mask.astype(np.float32))


@pytest.mark.parametrize("prune", [True, False])
@pytest.mark.parametrize("k", [1, 5, 30])
def test_matches_brute_force_with_ties_and_exclusion(prune, k):
    rng = np.random.default_rng(k)
    query = int_factors(rng, 40, 4)
    # Items with very different norms so that pruning really stops queries early.
    items = int_factors(rng, 300, 4) * rng.choice([1, 2, 8], size=(300, 1)).astype(np.float32)
    exclude = random_exclude(rng, 40, 300, 0.2)
    idx, val = top_k_scores(query, items, k, exclude=exclude, prune=prune, **SMALL_TILES)
    ref_idx, ref_val = brute_force(query, items, k, exclude)
    assert idx.dtype == np.int32 and val.dtype == np.float32
    assert idx.shape == val.shape == (40, k)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(val, ref_val.astype(np.float32))


@pytest.mark.parametrize("tiles", [SMALL_TILES, {}], ids=["small_tiles", "default_tiles"])
def test_float_factors_match_brute_force(tiles):
    rng = np.random.default_rng(0)
    query = rng.standard_normal((50, 8)).astype(np.float32)
    # Equal-ish norms: no pruning, so late blocks hold rare single candidates in any chunk.
    items = rng.standard_normal((10000, 8)).astype(np.float32)
    exclude = random_exclude(rng, 50, 10000, 0.05)
    idx, val = top_k_scores(query, items, 10, exclude=exclude, **tiles)
    ref_idx, ref_val = brute_force(query, items, 10, exclude)
    np.testing.assert_array_equal(idx, ref_idx)  # random floats: no near-ties at this size
    np.testing.assert_allclose(val, ref_val, rtol=1e-5)


def test_pruning_does_not_change_results_and_is_deterministic():
    rng = np.random.default_rng(1)
    query = rng.standard_normal((64, 6)).astype(np.float32)
    items = (rng.standard_normal((2000, 6)) * rng.lognormal(0, 1.5, (2000, 1))).astype(np.float32)
    pruned = top_k_scores(query, items, 20, **SMALL_TILES)
    again = top_k_scores(query, items, 20, **SMALL_TILES)
    exhaustive = top_k_scores(query, items, 20, prune=False, tile_queries=64, tile_items=2000, n_threads=1)
    np.testing.assert_array_equal(pruned[0], again[0])
    np.testing.assert_array_equal(pruned[1], again[1])
    # Other tile shapes may round sgemm sums differently in the last bit, never the ranking here.
    np.testing.assert_array_equal(pruned[0], exhaustive[0])
    np.testing.assert_allclose(pruned[1], exhaustive[1], rtol=1e-6)


def test_padding_when_too_few_admissible_items():
    query = np.ones((3, 2), dtype=np.float32)
    items = np.array([[1, 0], [2, 0], [3, 0], [4, 0]], dtype=np.float32)
    # Row 0 excludes 3 of 4 items, row 1 all of them, row 2 none.
    exclude = scipy.sparse.csr_matrix(np.array([[1, 1, 0, 1], [1, 1, 1, 1], [0, 0, 0, 0]]))
    idx, val = top_k_scores(query, items, 3, exclude=exclude, **SMALL_TILES)
    np.testing.assert_array_equal(idx, [[2, -1, -1], [-1, -1, -1], [3, 2, 1]])
    np.testing.assert_array_equal(val, np.array([[3, -np.inf, -np.inf], [-np.inf] * 3, [4, 3, 2]], np.float32))


def test_k_larger_than_n_items():
    rng = np.random.default_rng(2)
    query = int_factors(rng, 5, 3)
    items = int_factors(rng, 6, 3)
    idx, val = top_k_scores(query, items, 10, **SMALL_TILES)
    ref_idx, ref_val = brute_force(query, items, 10)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(val, ref_val.astype(np.float32))
    assert (idx[:, 6:] == -1).all() and np.isneginf(val[:, 6:]).all()


def test_explicit_zeros_in_exclude_are_not_excluded():
    query = np.ones((1, 1), dtype=np.float32)
    items = np.array([[3], [2], [1]], dtype=np.float32)
    exclude = scipy.sparse.csr_matrix((np.array([0.0, 1.0]), np.array([0, 1]), np.array([0, 2])), shape=(1, 3))
    idx, _ = top_k_scores(query, items, 2, exclude=exclude)
    np.testing.assert_array_equal(idx, [[0, 2]])


def test_unsorted_exclude_indices():
    query = np.ones((1, 1), dtype=np.float32)
    items = np.arange(10, dtype=np.float32)[:, None]
    exclude = scipy.sparse.csr_matrix((np.ones(3), np.array([9, 2, 8]), np.array([0, 3])), shape=(1, 10))
    exclude.has_sorted_indices = False
    idx, _ = top_k_scores(query, items, 3, exclude=exclude)
    np.testing.assert_array_equal(idx, [[7, 6, 5]])


def test_empty_inputs():
    items = np.ones((4, 3), dtype=np.float32)
    idx, val = top_k_scores(np.empty((0, 3), np.float32), items, 5)
    assert idx.shape == val.shape == (0, 5)
    idx, val = top_k_scores(np.ones((2, 3), np.float32), np.empty((0, 3), np.float32), 2)
    np.testing.assert_array_equal(idx, -np.ones((2, 2)))
    idx, val = top_k_scores(np.ones((2, 3), np.float32), items, 0)
    assert idx.shape == (2, 0)


def test_zero_query_returns_lowest_indices():
    items = np.array([[1, 0], [0, 1], [-1, 0], [5, 5]], dtype=np.float32)
    idx, val = top_k_scores(np.zeros((1, 2), np.float32), items, 2, **SMALL_TILES)
    np.testing.assert_array_equal(idx, [[0, 1]])
    np.testing.assert_array_equal(val, [[0, 0]])


def test_progress_is_reported():
    rng = np.random.default_rng(3)
    calls = []
    top_k_scores(rng.standard_normal((30, 4)), rng.standard_normal((50, 4)), 3,
                 progress=lambda done, total: calls.append((done, total)), progress_interval=0.0, **SMALL_TILES)
    assert calls[-1] == (30, 30)
    assert all(0 <= d <= t == 30 for d, t in calls)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError):
        top_k_scores(np.ones((2, 3)), np.ones((4, 2)), 1)
    with pytest.raises(ValueError):
        top_k_scores(np.ones((2, 3)), np.ones((4, 3)), 1, exclude=scipy.sparse.csr_matrix((2, 5)))


def brute_force_cosine(factors, k):
    f = factors.astype(np.float64)
    norm = np.linalg.norm(f, axis=1)
    unit = f / np.where(norm > 0, norm, 1.0)[:, None]
    return brute_force(unit, unit, k, scipy.sparse.identity(len(f), format="csr"))


def test_similar_items_matches_brute_force_cosine_and_excludes_self():
    rng = np.random.default_rng(4)
    factors = (rng.standard_normal((300, 8)) * rng.lognormal(0, 1, (300, 1))).astype(np.float32)
    idx, val = similar_items(factors, 10, **SMALL_TILES)
    ref_idx, ref_val = brute_force_cosine(factors, 10)
    assert not (idx == np.arange(300)[:, None]).any()
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(val, ref_val, rtol=1e-5, atol=1e-6)


def test_similar_items_for_some_items():
    rng = np.random.default_rng(5)
    factors = rng.standard_normal((100, 5)).astype(np.float32)
    ids = np.array([7, 3, 99])
    idx, val = similar_items(factors, 4, item_ids=ids)
    all_idx, all_val = similar_items(factors, 4)
    np.testing.assert_array_equal(idx, all_idx[ids])
    np.testing.assert_allclose(val, all_val[ids], rtol=1e-6)


def test_similar_items_excludes_self_even_with_duplicates():
    # Item 1 duplicates item 0: cosine 1 to each other, and only self may be dropped.
    factors = np.array([[1, 2], [1, 2], [2, 1], [-1, 0]], dtype=np.float32)
    idx, _ = similar_items(factors, 2)
    np.testing.assert_array_equal(idx[:2, 0], [1, 0])
    assert not (idx == np.arange(4)[:, None]).any()


def test_similar_items_zero_norm_items_score_zero():
    factors = np.array([[1, 0], [0, 0], [1, 1], [-1, 0]], dtype=np.float32)
    idx, val = similar_items(factors, 3, **SMALL_TILES)
    assert np.isfinite(val).all()
    # The zero item has cosine 0 to everything: lowest other indices first.
    np.testing.assert_array_equal(idx[1], [0, 2, 3])
    np.testing.assert_array_equal(val[1], [0, 0, 0])
    # For item 0 it ranks as a 0 between item 2 (0.707) and item 3 (-1).
    np.testing.assert_array_equal(idx[0], [2, 1, 3])
    np.testing.assert_allclose(val[0], [np.sqrt(0.5), 0, -1], rtol=1e-6)
