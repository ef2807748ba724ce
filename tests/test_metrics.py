"""Hand-computed metric values on tiny cases, plus a randomised check against a plain-Python reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from src.recsys.metrics import contains, ranking_metrics, stored_keys

LOG3 = math.log2(3)


def csr(rows_of_items: list[list[int]], n_items: int) -> sp.csr_matrix:
    dense = np.zeros((len(rows_of_items), n_items), dtype=bool)
    for row, items in enumerate(rows_of_items):
        dense[row, items] = True
    return sp.csr_matrix(dense)


@pytest.fixture
def three_users() -> dict[str, float]:
    """u0 hits at ranks 1 and 3 with |truth| = 2 < k; u1 has one non-hit then empty slots; u2 has an empty list."""
    truth = csr([[0, 2], [4], [0, 1, 3, 4]], 5)
    train = csr([[1], [0, 1], []], 5)
    top = np.array([[0, 1, 2], [2, -1, -1], [-1, -1, -1]], dtype=np.int32)
    listeners = np.array([3, 5, 0, 1, 2])  # item 2 unseen in train
    return ranking_metrics(top, truth, train, listeners, n_train_users=8, n_train_items=4, ks=[1, 2, 3])


def test_keys_are_exact_and_complete(three_users):
    names = ["precision", "recall", "ndcg", "map", "coverage", "novelty", "miuf", "full_list_share"]
    assert set(three_users) == {f"{n}_at_{k}" for n in names for k in (1, 2, 3)} | {"users"}
    assert three_users["users"] == 3


def test_precision_and_recall(three_users):
    assert three_users["precision_at_1"] == pytest.approx(1 / 3)
    assert three_users["precision_at_2"] == pytest.approx(1 / 6)
    assert three_users["precision_at_3"] == pytest.approx(2 / 9)
    assert three_users["recall_at_1"] == pytest.approx(1 / 6)
    assert three_users["recall_at_2"] == pytest.approx(1 / 6)
    assert three_users["recall_at_3"] == pytest.approx(1 / 3)


def test_ndcg_uses_ideal_over_min_truth_k(three_users):
    assert three_users["ndcg_at_1"] == pytest.approx(1 / 3)
    assert three_users["ndcg_at_2"] == pytest.approx((1 / (1 + 1 / LOG3)) / 3)
    assert three_users["ndcg_at_3"] == pytest.approx((1.5 / (1 + 1 / LOG3)) / 3)


def test_map_divides_by_min_truth_k(three_users):
    assert three_users["map_at_1"] == pytest.approx(1 / 3)
    assert three_users["map_at_2"] == pytest.approx(1 / 6)
    assert three_users["map_at_3"] == pytest.approx((1 + 2 / 3) / 2 / 3)


def test_coverage_counts_train_items_only(three_users):
    # item 2 is recommended but has no train listener, so only items 0 and 1 of the 4 train items count
    assert three_users["coverage_at_1"] == pytest.approx(1 / 4)
    assert three_users["coverage_at_2"] == pytest.approx(2 / 4)
    assert three_users["coverage_at_3"] == pytest.approx(2 / 4)


def test_novelty_is_zero_for_empty_list(three_users):
    assert three_users["novelty_at_1"] == pytest.approx(2 / 3)
    assert three_users["novelty_at_2"] == pytest.approx((1 / 2 + 1) / 3)
    assert three_users["novelty_at_3"] == pytest.approx((2 / 3 + 1) / 3)


def test_miuf_skips_empty_lists_and_counts_unseen_item_as_one_listener(three_users):
    item0, item1, item2 = 3 - math.log2(3), 3 - math.log2(5), 3.0
    assert three_users["miuf_at_1"] == pytest.approx((item0 + item2) / 2, rel=1e-6)
    assert three_users["miuf_at_2"] == pytest.approx(((item0 + item1) / 2 + item2) / 2, rel=1e-6)
    assert three_users["miuf_at_3"] == pytest.approx(((item0 + item1 + item2) / 3 + item2) / 2, rel=1e-6)


def test_full_list_share(three_users):
    assert three_users["full_list_share_at_1"] == pytest.approx(2 / 3)
    assert three_users["full_list_share_at_2"] == pytest.approx(1 / 3)
    assert three_users["full_list_share_at_3"] == pytest.approx(1 / 3)


def test_truth_larger_than_k():
    truth = csr([[0, 1, 2, 3]], 5)
    top = np.array([[1, 4, 0]])
    m = ranking_metrics(top, truth, csr([[]], 5), np.ones(5), 1, 5, [3])
    assert m["recall_at_3"] == pytest.approx(2 / 4)
    assert m["map_at_3"] == pytest.approx((1 + 2 / 3) / 3)
    assert m["ndcg_at_3"] == pytest.approx(1.5 / (1 + 1 / LOG3 + 0.5))


def test_user_without_hits_scores_zero():
    m = ranking_metrics(np.array([[3, 4]]), csr([[0]], 5), csr([[3]], 5), np.ones(5), 2, 5, [2])
    for name in ("precision", "recall", "ndcg", "map"):
        assert m[f"{name}_at_2"] == 0.0
    assert m["novelty_at_2"] == pytest.approx(0.5)
    assert m["full_list_share_at_2"] == 1.0


def test_items_past_the_index_are_misses_that_fill_slots():
    # item 5 of user 0 must not alias item 0 of user 1 (key 0 * 5 + 5 == 1 * 5 + 0)
    truth = csr([[1], [0]], 5)
    train = csr([[], [0]], 5)
    top = np.array([[5, 0], [0, -1]])
    m = ranking_metrics(top, truth, train, np.array([1, 1, 1, 1, 1]), 4, 5, [2])
    assert m["precision_at_2"] == pytest.approx(0.25)
    assert m["novelty_at_2"] == pytest.approx((1 + 0) / 2)
    assert m["full_list_share_at_2"] == pytest.approx(0.5)
    assert m["coverage_at_2"] == pytest.approx(1 / 5)
    assert m["miuf_at_2"] == pytest.approx(((2 + 2) / 2 + 2) / 2)


def test_explicit_zeros_and_unsorted_indices():
    truth = sp.csr_matrix((np.array([0.0, 1.0]), np.array([3, 1]), np.array([0, 2])), shape=(1, 5))
    assert not truth.has_sorted_indices
    m = ranking_metrics(np.array([[3, 1]]), truth, csr([[]], 5), np.ones(5), 1, 5, [1, 2])
    assert m["precision_at_1"] == 0.0  # item 3 is a stored zero, not relevant
    assert m["recall_at_2"] == 1.0  # |truth| = 1


def test_wider_top_items_are_cut_to_max_k():
    m = ranking_metrics(np.array([[1, 0, 2, 3]]), csr([[0]], 5), csr([[]], 5), np.ones(5), 1, 5, [1])
    assert m["precision_at_1"] == 0.0 and m["full_list_share_at_1"] == 1.0


def test_too_narrow_top_items_raise():
    with pytest.raises(ValueError):
        ranking_metrics(np.array([[1, 0]]), csr([[0]], 5), csr([[]], 5), np.ones(5), 1, 5, [3])


def test_no_users_gives_zeros():
    m = ranking_metrics(np.zeros((0, 2), int), csr([], 5), csr([], 5), np.ones(5), 1, 5, [2])
    assert m["users"] == 0 and m["precision_at_2"] == 0.0 and m["miuf_at_2"] == 0.0


def test_contains_and_keys():
    matrix = csr([[1, 3], [0], [], [0]], 4)
    assert stored_keys(matrix).tolist() == [1, 3, 4, 12]
    # (0, 4) would alias (1, 0) if columns past the matrix were looked up
    found = contains(matrix, np.array([0, 0, 2, 3, 0, 0, 1]), np.array([3, 2, 1, 0, 4, -1, 0]))
    assert found.tolist() == [True, False, False, True, False, False, True]


def reference_metrics(top, truth_sets, train_sets, listeners, n_train_users, n_train_items, ks):
    """Straight transcription of the definitions, one user at a time."""
    n_items = len(listeners)
    out = {}
    for k in ks:
        rows = {name: [] for name in ("p", "r", "ndcg", "map", "nov", "full")}
        miufs, covered = [], set()
        for items, truth, seen in zip(top, truth_sets, train_sets):
            items = [int(i) for i in items[:k]]
            filled = [i for i in items if i >= 0]
            hits = [i >= 0 and i in truth for i in items]
            rows["p"].append(sum(hits) / k)
            rows["r"].append(sum(hits) / len(truth) if truth else 0.0)
            dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h)
            idcg = sum(1 / math.log2(r + 2) for r in range(min(len(truth), k)))
            rows["ndcg"].append(dcg / idcg if idcg else 0.0)
            ap = sum(sum(hits[: r + 1]) / (r + 1) for r, h in enumerate(hits) if h)
            rows["map"].append(ap / min(len(truth), k) if truth else 0.0)
            rows["nov"].append(sum(i not in seen for i in filled) / len(filled) if filled else 0.0)
            rows["full"].append(len(filled) == k)
            if filled:
                freq = [listeners[i] if i < n_items else 0 for i in filled]
                miufs.append(np.mean([-math.log2(max(f, 1) / n_train_users) for f in freq]))
            covered |= {i for i in filled if i < n_items and listeners[i] > 0}
        out.update({f"precision_at_{k}": np.mean(rows["p"]), f"recall_at_{k}": np.mean(rows["r"]),
                    f"ndcg_at_{k}": np.mean(rows["ndcg"]), f"map_at_{k}": np.mean(rows["map"]),
                    f"novelty_at_{k}": np.mean(rows["nov"]), f"full_list_share_at_{k}": np.mean(rows["full"]),
                    f"miuf_at_{k}": np.mean(miufs) if miufs else 0.0,
                    f"coverage_at_{k}": len(covered) / n_train_items})
    return out


@pytest.mark.parametrize("seed", range(5))
def test_matches_reference_on_random_cases(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, width = 40, 12, 6
    truth_sets = [set(rng.choice(n_items, rng.integers(0, 6), replace=False).tolist()) for _ in range(n_users)]
    train_sets = [set(rng.choice(n_items, rng.integers(0, 8), replace=False).tolist()) for _ in range(n_users)]
    top = np.array([rng.permutation(n_items + 3)[:width] for _ in range(n_users)])  # some past the index
    top[rng.random(top.shape) < 0.2] = -1
    listeners = rng.integers(0, 20, n_items)
    got = ranking_metrics(top, csr([list(s) for s in truth_sets], n_items), csr([list(s) for s in train_sets], n_items),
                          listeners, 30, int((listeners > 0).sum()), [1, 3, 5])
    want = reference_metrics(top, truth_sets, train_sets, listeners, 30, int((listeners > 0).sum()), [1, 3, 5])
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-9), key
