"""The learned re-ranker: the numpy evaluation of the trees orders rows exactly as CatBoost scores them, and the
features describe the candidates as documented."""
from __future__ import annotations

import json

import numpy as np
import pytest
from catboost import CatBoost

from src.recsys.serving.blend import candidate_lists, blend_for_user
from src.recsys.serving.blend_config import BlendConfig
from src.recsys.serving.bundle_format import MANIFEST
from src.recsys.serving.bundle_reader import BundleError, ServingBundle
from src.recsys.serving.online_candidates import ONLINE_SOURCES
from src.recsys.serving.reranker import ABSENT_RANK, RERANKER_FEATURES, candidate_features
from src.recsys.serving.trees import TreeEnsemble
from tests.helpers.bundles import tiny_bundle


@pytest.mark.parametrize("depth", [2, 5])
def test_the_numpy_trees_score_rows_as_catboost_does(depth):
    rng = np.random.default_rng(depth)
    rows = rng.random((3000, len(RERANKER_FEATURES))).astype(np.float32)
    rows[:, 3] = np.round(rows[:, 3] * 4)  # a few distinct values: some trees stop short of the depth
    labels = (rows[:, 0] + rows[:, 3] / 4 + rng.random(3000) > 1.4).astype(int)
    model = CatBoost({"loss_function": "Logloss", "iterations": 60, "depth": depth, "random_seed": 0, "verbose": 0,
                      "allow_writing_files": False})
    model.fit(rows, labels)
    trees = TreeEnsemble.from_catboost(model)
    raw = model.predict(rows, prediction_type="RawFormulaVal")
    mine = trees.score(rows)
    slope, intercept = np.polyfit(mine, raw, 1)  # CatBoost's scale and bias, which the order does not need
    assert slope > 0 and np.allclose(mine * slope + intercept, raw, atol=1e-6)
    assert len(TreeEnsemble.empty()) == 0


def features_of(bundle, user, listens, config):
    found = candidate_lists(bundle, user, np.array(listens, np.int32), 10, config)
    tracks, in_offline, rows = candidate_features(bundle, found.offline[:2], found.online, found.recent, found.cold)
    assert not np.isnan(rows).any()  # every column of RERANKER_FEATURES was written, by name
    return {int(t): dict(zip(RERANKER_FEATURES, row.tolist())) for t, row in zip(tracks, rows)}, found


def test_candidate_features_describe_both_lists_and_the_last_listen():
    """User 101 (offline 7, 8) just played 9 (album 500: 9, 10, 11; artist 900): 10 is its album's next track."""
    bundle = tiny_bundle()
    features, found = features_of(bundle, 101, [9], BlendConfig(recent_listens=1, similar_weight=0.0))
    assert sorted(features) == [1, 7, 8, 10, 11]
    assert features[7]["offline_rank"] == 1 and features[8]["offline_rank"] == 2
    assert features[10]["offline_rank"] == ABSENT_RANK and features[10]["online_rank"] == 1
    assert features[10]["continuation"] == 1.0 and features[10]["played_next"] == 0.0
    assert features[10]["next_in_album_of_last"] == 1 and features[11]["next_in_album_of_last"] == 0
    assert features[11]["same_album_as_last"] == 1 and features[1]["same_album_as_last"] == 0
    assert features[1]["same_artist_as_last"] == 1 and features[7]["same_artist_as_last"] == 0
    assert features[1]["recent_artist_share"] == 1.0 and features[1]["log_listeners"] == pytest.approx(np.log1p(2))
    assert all(f["online_listens"] == 1 and f["cold"] == 0 for f in features.values())
    cold, _ = features_of(bundle, 999, [9], BlendConfig(recent_listens=1, cold_strategy="learned"))
    assert cold[1]["cold"] == 1 and cold[1]["offline_rank"] == 1  # the chart (1, 2, 3, ...) stands in


def test_the_learned_strategy_serves_the_union_in_the_model_order():
    """A one-tree model that prefers the next track of the album puts 10 first, then the rest by track id."""
    bundle = tiny_bundle()
    column = RERANKER_FEATURES.index("next_in_album_of_last")
    trees = TreeEnsemble(np.array([[column]], np.int32), np.array([[0.5]], np.float32), np.array([[0.0, 1.0]]))
    learned = BlendConfig(recent_listens=1, similar_weight=0.0, strategy="learned")
    served = blend_for_user(bundle.with_blend(learned, trees), 101, np.array([9], np.int32), 4, learned)
    assert served.track_ids.tolist() == [10, 1, 7, 8]
    assert [int(s) for s in served.sources] == [1, 1, 0, 0]  # online, online, offline, offline


def test_the_bundle_records_the_feature_names_and_refuses_others_naming_both(tmp_path):
    """The trees refer to columns by position: a bundle trained on other names (or another order) is refused."""
    tiny_bundle(tmp_path / "bundle")
    path = tmp_path / "bundle" / MANIFEST
    manifest = json.loads(path.read_text())
    assert manifest["reranker_features"] == list(RERANKER_FEATURES)
    assert set(ONLINE_SOURCES) <= set(RERANKER_FEATURES)  # each online source's contribution is a named column
    swapped = [RERANKER_FEATURES[1], RERANKER_FEATURES[0], *RERANKER_FEATURES[2:]]
    for found in (swapped, list(RERANKER_FEATURES[:-1]), None):
        manifest["reranker_features"] = found
        path.write_text(json.dumps(manifest))
        with pytest.raises(BundleError) as refused:
            ServingBundle.open(tmp_path / "bundle")
        message = str(refused.value)
        assert f"trained on features {found}" in message and f"this code builds {list(RERANKER_FEATURES)}" in message
        assert "dvc repro serving" in message
