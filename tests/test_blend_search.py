"""The blend learned from data: the search finds the online list when it predicts, keeps the offline list when
it does not, and nothing it learns comes from the users the replay reports on."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from src.recsys.serving.bundle import ServingBundle
from src.recsys.serving.holdout import HoldoutConfig, tuning_mask
from src.recsys.serving.replay import listening_sequences, replay_report
from src.recsys.serving.search import BlendSearchConfig, search_blend
from tests.helpers import REPO_ROOT
from tests.helpers.bundles import random_frames

SHIPPED = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
HOLDOUT = HoldoutConfig(tune_share=0.5, seed=3)


def search_config(**space) -> BlendSearchConfig:
    """The shipped search space (and holdout share 0.5: the random world is small), with ``space`` overrides."""
    params = {**SHIPPED, "blend_search": {**SHIPPED["blend_search"], "tune_share": HOLDOUT.tune_share,
                                          "seed": HOLDOUT.seed, "space": {**SHIPPED["blend_search"]["space"], **space}}}
    return BlendSearchConfig.from_params(params)


@pytest.fixture(scope="module")
def bundle() -> ServingBundle:
    return ServingBundle.build(**random_frames(7, n_users=400, n_tracks=300, list_lengths=(30, 31)))  # as rank.n


def test_events(bundle: ServingBundle, follow_played_next: bool, seed: int = 0, users=None) -> pd.DataFrame:
    """Eight test listens per user on one day: each the best unheard played-next track of the previous one
    (when ``follow_played_next``), or random tracks."""
    rng = np.random.default_rng(seed)
    if users is None:  # every user but the one who heard the whole catalog
        users = bundle.history.keys[np.diff(bundle.history.offsets) < len(bundle.catalog.track_ids) // 2]
    rows = []
    for user in users.tolist():
        heard = set(bundle.history.row(user)[0].tolist())
        track = int(rng.choice(bundle.played_next.keys))
        for seq in range(8):
            rows.append((user, track, seq + 1))
            heard.add(track)
            following = [t for t in bundle.played_next.row(track)[0].tolist() if t not in heard]
            if follow_played_next and following:
                track = following[0]
            else:
                track = int(rng.choice([t for t in bundle.catalog.track_ids.tolist() if t not in heard]))
    frame = pd.DataFrame(rows, columns=["user_id", "track_id", "track_seq"])
    frame["started_at"] = pd.Timestamp("2022-12-20")
    return frame.astype({"user_id": np.int32, "track_id": np.int32, "track_seq": np.int16})


test_events.__test__ = False  # a helper, not a test


def test_the_search_gives_the_online_list_slots_when_it_predicts_what_comes_next(bundle):
    sequences = listening_sequences(test_events(bundle, follow_played_next=True))
    chosen, reranker, report = search_blend(bundle, sequences, search_config())
    assert chosen.strategy == "learned" and len(reranker) or chosen.online_weight > 0
    with_history = report["chosen_ndcg"]["with_history"]
    assert all(with_history[m] > 1.1 * report["baselines"]["offline"][m] for m in with_history)
    assert report["selection_users"]["with_history"][3] > 40 and report["reranker"]["rows"] > 1000


def test_the_search_keeps_the_offline_list_when_online_listens_predict_nothing(bundle):
    sequences = listening_sequences(test_events(bundle, follow_played_next=False))
    _, _, report = search_blend(bundle, sequences, search_config())
    for m, value in report["chosen_ndcg"]["with_history"].items():
        assert value >= report["baselines"]["offline"][m]  # never below the offline list on the tuning users


def test_the_chosen_blend_depends_only_on_the_tuning_users(bundle):
    """Rewriting every listen of the users the replay reports on changes nothing the search learns."""
    events = test_events(bundle, follow_played_next=True)
    _, trees, report = search_blend(bundle, listening_sequences(events), search_config())
    reported = ~tuning_mask(events["user_id"].to_numpy(), HOLDOUT)
    rewritten = pd.concat([events[~reported], test_events(bundle, False, seed=9,
                                                          users=np.unique(events["user_id"].to_numpy()[reported]))])
    _, same_trees, again = search_blend(bundle, listening_sequences(rewritten), search_config())
    assert again == report and all(np.array_equal(a, b) for a, b in zip(vars(trees).values(), vars(same_trees).values()))
    rewritten_tuning = pd.concat([events[reported], test_events(bundle, False, seed=9,
                                                                users=np.unique(events["user_id"].to_numpy()[~reported]))])
    _, _, changed = search_blend(bundle, listening_sequences(rewritten_tuning), search_config())
    assert changed["trials"] != report["trials"]  # the test can fail: the tuning users' listens do matter


def test_the_replay_reports_only_on_users_the_search_never_saw(bundle, monkeypatch):
    events = test_events(bundle, follow_played_next=True)
    replayed = []
    from src.recsys.serving import replay as replay_module
    original = replay_module.replay

    def spy(bundle, sequences, users, *args, **kwargs):
        replayed.append(users)
        return original(bundle, sequences, users, *args, **kwargs)

    monkeypatch.setattr(replay_module, "replay", spy)
    replay_report(bundle, events, (1, 3), 10, 10_000, 0, HOLDOUT)
    users = np.unique(np.concatenate(replayed))
    assert len(users) > 50 and not tuning_mask(users, HOLDOUT).any()


def test_the_holdout_split_is_a_stable_share_of_any_ids():
    ids = np.arange(0, 2_000_000, 7, dtype=np.int32)
    mask = tuning_mask(ids, HoldoutConfig(tune_share=0.3, seed=42))
    assert abs(mask.mean() - 0.3) < 0.01
    assert (tuning_mask(ids[::-1], HoldoutConfig(0.3, 42)) == mask[::-1]).all()  # per id, not per position
    assert (mask != tuning_mask(ids, HoldoutConfig(0.3, 43))).mean() > 0.3  # the seed redraws the line
