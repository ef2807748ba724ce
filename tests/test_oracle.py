"""The oracle ceiling: test-period day, user sampling, and the true-preference top lists."""
from __future__ import annotations

import numpy as np
import pytest

from src.recsys import oracle
from src.recsys.evaluation import encode, evaluate_popular, evaluate_recommendations
from src.recsys.metrics import EMPTY, ranking_metrics
from src.recsys.popularity import top_popular
from src.recsys.synthetic import load_ground_truth
from src.recsys.synthetic.preferences import preference_matrix


K = 10


@pytest.fixture(scope="module")
def truth(generated):
    return load_ground_truth(generated.raw_dir)


@pytest.fixture(scope="module")
def day(generated) -> int:
    return oracle.test_period_day(generated.test["started_at"].to_numpy())


def test_test_period_day_is_the_middle_day():
    dates = np.array(["2022-12-16T08:00", "2022-12-31T23:59", "2022-12-20"], dtype="datetime64[ns]")
    assert oracle.test_period_day(dates) == (349 + 364) // 2  # 2022-12-16 is day 349, 12-31 day 364
    assert oracle.test_period_day(np.array(["2022-01-01T12:00"], dtype="datetime64[ns]")) == 0
    assert oracle.test_period_day(np.array(["2022-03-01", "2022-03-03"], dtype="datetime64[ns]")) == 60


def test_test_period_day_of_generated_test(day):
    assert day == (349 + 364) // 2  # the generated test period spans 2022-12-16..2022-12-31


def test_sample_rows_all_when_small():
    assert np.array_equal(oracle.sample_rows(5, 5, 0), np.arange(5))
    assert np.array_equal(oracle.sample_rows(3, 10, 0), np.arange(3))


def test_sample_rows_seeded_sorted_unique():
    a = oracle.sample_rows(1000, 50, 42)
    assert np.array_equal(a, oracle.sample_rows(1000, 50, 42))
    assert not np.array_equal(a, oracle.sample_rows(1000, 50, 43))
    assert len(a) == 50 and len(np.unique(a)) == 50
    assert (np.diff(a) > 0).all()
    assert a.min() >= 0 and a.max() < 1000


@pytest.fixture(scope="module")
def oracle_top(evaluation_set, truth, day) -> np.ndarray:
    data = evaluation_set
    return oracle.oracle_top_items(truth, data, np.arange(len(data.users)), day, K)


def test_oracle_never_returns_seen_or_non_train_items(evaluation_set, oracle_top):
    data = evaluation_set
    assert oracle_top.shape == (len(data.users), K)
    assert (oracle_top != EMPTY).all()  # thousands of unseen tracks: every list is full
    rows = np.repeat(np.arange(len(data.users)), K)
    items = oracle_top.ravel()
    assert not np.asarray(data.train[rows, items]).ravel().any()
    assert (data.item_listeners[items] > 0).all()
    # no repeats within a list
    assert all(len(set(row)) == K for row in oracle_top[:200])


def test_oracle_lists_follow_true_preference(evaluation_set, truth, day, oracle_top):
    data = evaluation_set
    truth_columns = encode(data.item_ids, truth.tracks["track_id"].to_numpy())
    for row in (0, len(data.users) // 3, len(data.users) - 1):
        pref = preference_matrix(truth, data.users[[row]], day)[0]
        listed = pref[truth_columns[oracle_top[row]]]
        assert (np.diff(listed) <= 0).all()
        # nothing admissible outside the list is preferred to its last entry
        admissible = np.flatnonzero((data.item_listeners > 0) & (truth_columns >= 0))
        admissible = np.setdiff1d(admissible, data.train[row].indices)
        outside = np.setdiff1d(admissible, oracle_top[row])
        assert pref[truth_columns[outside]].max() <= listed[-1]


def test_oracle_pads_when_few_items_are_left(evaluation_set, truth, day):
    """With k larger than the unseen train tracks, the list holds exactly those, then EMPTY."""
    data = evaluation_set
    rows = np.array([0, 5])
    top = oracle.oracle_top_items(truth, data, rows, day, data.n_items + 5)
    truth_columns = encode(data.item_ids, truth.tracks["track_id"].to_numpy())
    candidates = np.flatnonzero((data.item_listeners > 0) & (truth_columns >= 0))
    for i, row in enumerate(rows):
        expected = np.setdiff1d(candidates, data.train[row].indices)
        filled = top[i][top[i] != EMPTY]
        assert len(filled) == len(expected)
        assert np.array_equal(np.sort(filled), expected)
        assert (top[i][len(filled):] == EMPTY).all()


def test_oracle_beats_als_and_popular(generated, als_recommendations, evaluation_set, oracle_top):
    """Loose margins: at this scale the oracle scores ndcg@10 ~0.52, ALS ~0.33, popular ~0.13."""
    data = evaluation_set
    gen = generated
    ks = [K]
    best = ranking_metrics(oracle_top, data.truth, data.train, data.item_listeners,
                           data.n_train_users, data.n_train_items, ks)["ndcg_at_10"]
    als = evaluate_recommendations(als_recommendations, data, ks)["ndcg_at_10"]
    popular = evaluate_popular(top_popular(gen.train, gen.items, 100)["track_id"].to_numpy(), data, ks, True)["ndcg_at_10"]
    assert best > 1.2 * als, (best, als)
    assert best > 2 * popular, (best, popular)
