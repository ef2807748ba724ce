"""ALS one iteration at a time (``AlsFit``) and the iteration count `als_tune` chooses (``fit_until_no_gain``)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml
from implicit.cpu.als import AlternatingLeastSquares

from src.recsys.als_model import AlsFit, fit_als
from src.recsys.als_tuning import AlsTuningConfig, ValidationUsers, fit_until_no_gain
from src.recsys.ranking.dataset import feature_history
from tests.helpers import REPO_ROOT
from tests.helpers import synthetic

SHIPPED = AlsTuningConfig.from_params(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))


@pytest.fixture(scope="module")
def feature_period(generated):
    """What `als_tune` fits on and scores against: the history before T - W and the window's listens."""
    history, held_out = feature_history(generated.train, synthetic.SPLIT_DATE, 14)
    data = history.interaction_matrix()
    return data, ValidationUsers.of(data, held_out, SHIPPED.users, synthetic.ALS.random_state)


@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_k_steps_give_exactly_implicits_fit_with_k_iterations(train_matrix, alpha):
    cfg = dataclasses.replace(synthetic.ALS, alpha=alpha)
    reference = AlternatingLeastSquares(factors=cfg.factors, iterations=3, regularization=cfg.regularization,
                                        alpha=cfg.alpha, random_state=cfg.random_state,
                                        calculate_training_loss=False)
    reference.fit(train_matrix.matrix, show_progress=False)
    model = fit_als(train_matrix, cfg, 3)
    assert np.array_equal(model.user_factors, reference.user_factors)
    assert np.array_equal(model.item_factors, reference.item_factors)
    assert np.array_equal(model.user_ids, train_matrix.user_ids) and np.array_equal(model.item_ids, train_matrix.item_ids)


def test_a_model_taken_mid_fit_is_not_changed_by_further_steps(train_matrix):
    fit = AlsFit(train_matrix, synthetic.ALS)
    fit.step()
    first = fit.model()
    saved = first.user_factors.copy()
    fit.step()
    assert np.array_equal(first.user_factors, saved) and not np.array_equal(fit.user_factors, saved)


def test_the_validation_users_have_held_out_listens_on_known_tracks_and_none_they_fit_on(feature_period):
    data, validation = feature_period
    assert len(validation.rows) == min(SHIPPED.users, len(validation.rows)) > 100
    assert (np.diff(validation.truth.indptr) > 0).all()
    assert validation.seen.shape == validation.truth.shape == (len(validation.rows), data.matrix.shape[1])
    assert (validation.seen != data.matrix[validation.rows]).nnz == 0


def test_tuning_stops_at_the_first_iteration_that_gains_too_little_and_keeps_the_one_before(feature_period):
    data, validation = feature_period
    model, report = fit_until_no_gain(data, validation, synthetic.ALS, SHIPPED)
    curve, chosen = report["curve"], report["iterations"]
    assert 1 < chosen < SHIPPED.max_iterations  # converges well before the cap on this data
    best = curve[chosen - 1]
    assert all(later >= earlier * (1 + SHIPPED.min_gain) for earlier, later in zip(curve[:chosen - 1], curve[1:chosen]))
    assert len(curve) == chosen + 1 and curve[-1] < best * (1 + SHIPPED.min_gain)
    assert report["validation_ndcg_at_10"] == best
    # the model is the chosen iteration's, the same factors a fixed fit with that count gives
    fixed = fit_als(data, synthetic.ALS, chosen)
    assert np.array_equal(model.user_factors, fixed.user_factors)
    assert validation.ndcg(model.user_factors, model.item_factors) == pytest.approx(best, abs=1e-6)


def test_tuning_runs_at_most_max_iterations(feature_period):
    data, validation = feature_period
    cfg = dataclasses.replace(SHIPPED, max_iterations=2, min_gain=0.0)
    _, report = fit_until_no_gain(data, validation, synthetic.ALS, cfg)
    assert len(report["curve"]) <= 2 and report["iterations"] <= 2


def test_no_held_out_listen_of_a_known_user_is_a_clear_error(feature_period, generated):
    data, _ = feature_period
    nobody = generated.train.head(0)
    with pytest.raises(ValueError, match="no held-out listens"):
        ValidationUsers.of(data, nobody, 10, 0)
