"""Evaluation set construction, recommendation encoding and the popular baselines on tiny hand-checked cases."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from src.recsys import arrays
from src.recsys.evaluation import (
    build_evaluation_set,
    chunked_encode,
    encode,
    evaluate_cold_users,
    evaluate_popular,
    evaluate_recommendations,
    popular_top_items,
    recommendation_matrix,
    unique_sorted,
)
from src.recsys.metrics import ranking_metrics


def events(pairs: list[tuple[int, int]]) -> pd.DataFrame:
    users, tracks = zip(*pairs) if pairs else ((), ())
    n = len(pairs)
    return pd.DataFrame({
        "user_id": np.array(users, dtype=np.int32),
        "track_id": np.array(tracks, dtype=np.int32),
        "track_seq": np.arange(n, dtype=np.int16),
        "started_at": pd.to_datetime(np.arange(n), unit="s"),
    })


def recs_frame(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    users, tracks, ranks = zip(*rows)
    return pd.DataFrame({
        "user_id": np.array(users, dtype=np.int32),
        "track_id": np.array(tracks, dtype=np.int32),
        "score": np.zeros(len(rows), dtype=np.float32),
        "rank": np.array(ranks, dtype=np.int16),
    })


# train: users 1, 2 and train-only 3; test: users 1, 2 and cold 7. Tracks 10..14, track 14 only in test.
TRAIN = events([(1, 10), (1, 11), (1, 10), (2, 11), (2, 12), (3, 10), (3, 13)])
TEST = events([(1, 12), (1, 14), (2, 10), (2, 10), (7, 11), (7, 14)])


@pytest.fixture
def data():
    return build_evaluation_set(TRAIN, TEST)


def test_user_selection(data):
    assert data.users.tolist() == [1, 2]
    assert data.users.dtype == np.int32
    assert data.cold_users.tolist() == [7]
    assert data.item_ids.tolist() == [10, 11, 12, 13, 14]
    assert data.n_train_users == 3
    assert data.n_train_items == 4


def test_matrices_are_deduplicated(data):
    assert data.train.toarray().astype(int).tolist() == [[1, 1, 0, 0, 0], [0, 1, 1, 0, 0]]
    assert data.truth.toarray().astype(int).tolist() == [[0, 0, 1, 0, 1], [1, 0, 0, 0, 0]]
    assert data.cold_truth.toarray().astype(int).tolist() == [[0, 1, 0, 0, 1]]
    assert data.train.has_canonical_format and data.truth.has_canonical_format


def test_listeners_count_distinct_users_including_unevaluated(data):
    # track 10: users 1 (twice) and 3; track 13 only the train-only user 3; track 14 only in test
    assert data.item_listeners.tolist() == [2, 2, 1, 1, 0]


def test_sparse_ids_take_the_searchsorted_path():
    big = 2_000_000_000
    data = build_evaluation_set(events([(big, big), (5, 7)]), events([(big, 7), (9, 7)]))
    assert data.users.tolist() == [big] and data.cold_users.tolist() == [9]
    assert data.item_ids.tolist() == [7, big]
    assert data.train.toarray().astype(int).tolist() == [[0, 1]]
    assert data.truth.toarray().astype(int).tolist() == [[1, 0]]


def test_encode_and_unique_both_paths():
    dense, sparse = np.array([2, 5, 9]), np.array([-4, 3, 10**9])
    assert encode(np.array([9, 2, 3, -1, 100]), dense).tolist() == [2, 0, -1, -1, -1]
    assert encode(np.array([10**9, -4, 4, 0]), sparse).tolist() == [2, 0, -1, -1]
    assert encode(np.array([1]), np.array([], dtype=int)).tolist() == [-1]
    assert unique_sorted(np.array([5, 2, 5, 9], dtype=np.int32)).tolist() == [2, 5, 9]
    assert unique_sorted(np.array([10**9, -4, 10**9])).tolist() == [-4, 10**9]


def test_encode_sparse_ids_same_codes_with_and_without_a_table():
    """Sparse ids (real track ids reach 10^8): a big query builds a table, a small one binary-searches; both
    give the same codes, for ids absent, negative or beyond the largest (int64 beyond int32 too)."""
    rng = np.random.default_rng(0)
    ids = np.unique(rng.integers(0, 30_000_000, 1000)).astype(np.int32)
    tail = np.array([-1, 0, int(ids[-1]) + 1, 2**40, int(ids[3]) + 1])
    small = np.concatenate([rng.choice(ids, 50), tail])  # 8 x 55 queries << span: binary search
    big = np.concatenate([rng.choice(ids, 4_000_000), tail])  # 8 x 4M queries > span: a table
    assert 8 * len(small) + (1 << 24) < int(ids[-1]) < min(arrays.MAX_TABLE_SPAN, 8 * len(big))  # neither dense
    for values in (small, big):
        expected = arrays.find_sorted(ids.astype(np.int64), values)
        assert encode(values, ids).tolist() == expected.tolist()


def test_recommendation_matrix_places_ranks_and_ignores_noise(data):
    recs = recs_frame([
        (2, 10, 2), (2, 99, 1),  # user 2: unknown track 99 fills rank 1
        (1, 12, 1), (1, 13, 3), (1, 12, 2), (1, 11, 4),  # user 1: repeat of 12 emptied, rank 4 > k dropped
        (7, 11, 1), (3, 10, 1), (42, 10, 1),  # cold, train-only and unknown users are ignored
    ])
    top = recommendation_matrix(recs, data, 3)
    assert top.tolist() == [[2, -1, 3], [5, 0, -1]]  # 5 == n_items: the unknown track


def test_evaluate_recommendations_by_hand(data):
    recs = recs_frame([(2, 10, 2), (2, 99, 1), (1, 12, 1), (1, 13, 3), (1, 12, 2), (1, 11, 4), (7, 11, 1)])
    m = evaluate_recommendations(recs, data, [1, 3])
    # user 1: [12, -, 13] vs truth {12, 14}; user 2: [99?, 10, -] vs truth {10}
    assert m["users"] == 2
    assert m["precision_at_1"] == pytest.approx(0.5)
    assert m["precision_at_3"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert m["recall_at_3"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["ndcg_at_3"] == pytest.approx((1 / (1 + 1 / math.log2(3)) + 1 / math.log2(3)) / 2)
    assert m["map_at_3"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert m["full_list_share_at_1"] == 1.0 and m["full_list_share_at_3"] == 0.0
    assert m["novelty_at_3"] == pytest.approx((1 + 1) / 2)  # 12, 13 unseen by user 1; 99, 10 unseen by user 2
    assert m["coverage_at_3"] == pytest.approx(3 / 4)  # 12, 13, 10 of the 4 train tracks; 99 is not one
    log3 = math.log2(3)
    assert m["miuf_at_1"] == pytest.approx((log3 - 0 + log3) / 2, rel=1e-6)  # 12 has 1 listener, 99 counts one


def test_user_missing_from_recs_gets_empty_list(data):
    m = evaluate_recommendations(recs_frame([(1, 12, 1)]), data, [1])
    assert m["precision_at_1"] == pytest.approx(0.5)
    assert m["full_list_share_at_1"] == pytest.approx(0.5)
    assert m["novelty_at_1"] == pytest.approx(0.5)


def test_popular_without_filter_is_the_same_list(data):
    top = popular_top_items(np.array([11, 10, 12, 11, 99]), data, 5, filter_seen=False)
    assert top.tolist() == [[1, 0, 2, 5, -1]] * 2  # repeat of 11 dropped, 99 past the index, list too short


def test_popular_with_filter_removes_seen(data):
    top = popular_top_items(np.array([11, 10, 12, 13, 14]), data, 3, filter_seen=True)
    # user 1 saw 10, 11; user 2 saw 11, 12
    assert top.tolist() == [[2, 3, 4], [0, 3, 4]]
    short = popular_top_items(np.array([11, 10, 12]), data, 3, filter_seen=True)
    assert short.tolist() == [[2, -1, -1], [0, -1, -1]]


def test_popular_filter_grows_pool_past_heavy_users():
    # user 1 saw the 9 most popular tracks, so k=1 needs a pool deeper than 4 * k
    train = events([(1, t) for t in range(9)] + [(2, 0)])
    data = build_evaluation_set(train, events([(1, 9), (2, 9)]))
    top = popular_top_items(np.arange(12), data, 1, filter_seen=True)
    assert top.tolist() == [[9], [1]]


def brute_force_unseen(pool, seen_sets, k):
    rows = []
    for seen in seen_sets:
        row = [int(i) for i in pool if i not in seen][:k]
        rows.append(row + [-1] * (k - len(row)))
    return rows


@pytest.mark.parametrize("seed", range(3))
def test_popular_filter_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    pairs = [(int(u), int(t)) for u, t in zip(rng.integers(0, 30, 400), rng.integers(0, 25, 400))]
    data = build_evaluation_set(events(pairs), events([(u, 0) for u in range(30)]))
    pool = rng.permutation(25)[:20]
    seen_sets = [set(data.train[row].indices.tolist()) for row in range(len(data.users))]
    top = popular_top_items(data.item_ids[pool], data, 6, filter_seen=True)
    assert top.tolist() == brute_force_unseen(pool, seen_sets, 6)


def test_evaluate_popular_matches_its_top_items(data):
    popular = np.array([11, 10, 12, 13, 14])
    for filter_seen in (False, True):
        top = popular_top_items(popular, data, 3, filter_seen)
        want = ranking_metrics(top, data.truth, data.train, data.item_listeners, 3, 4, [1, 3])
        assert evaluate_popular(popular, data, [1, 3], filter_seen) == want
    # filtered: user 1 gets [12, 13, 14] (hits 12, 14), user 2 gets [10, 13, 14] (hit 10)
    assert evaluate_popular(popular, data, [3], True)["precision_at_3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert evaluate_popular(popular, data, [3], False)["precision_at_3"] == pytest.approx((1 / 3 + 1 / 3) / 2)


def test_evaluate_cold_users(data):
    m = evaluate_cold_users(np.array([10, 11, 12]), data, [1, 2])
    # cold user 7: list [10, 11] vs truth {11, 14}
    assert m["users"] == 1
    assert m["precision_at_1"] == 0.0
    assert m["precision_at_2"] == pytest.approx(0.5)
    assert m["recall_at_2"] == pytest.approx(0.5)
    assert m["map_at_2"] == pytest.approx(0.5 / 2)
    assert m["ndcg_at_2"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert m["novelty_at_2"] == 1.0


@pytest.mark.parametrize("ids", [np.array([3, 5, 9], np.int32), np.array([3, 5, 2**30], np.int32)])  # dense, sparse
def test_chunked_encode_equals_encode(ids):
    values = np.array([5, 4, 3, 2**30, 9, -1, 5, 2**31 - 1], np.int32)
    got = chunked_encode(values, ids, chunk=3)
    assert got.tolist() == encode(values, ids).tolist() and got.dtype == np.int32
