"""The blend learned from data: the search finds the online list when it predicts, keeps the offline list when
it does not, and nothing it learns comes from the users the replay reports on."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.recsys.serving.bundle_builder import build_bundle
from src.recsys.serving.bundle_reader import ServingBundle
from src.recsys.serving.holdout import HoldoutConfig, tuning_mask
from src.recsys.serving.online_replay import listening_sequences, replay_report
from src.recsys.serving.search import search_blend
from tests.helpers.bundles import random_frames
from tests.helpers.sessions import search_config, session_events

HOLDOUT = HoldoutConfig(tune_share=0.5, seed=3)


@pytest.fixture(scope="module")
def bundle() -> ServingBundle:
    return build_bundle(**random_frames(7, n_users=400, n_tracks=300, list_lengths=(30, 31)))  # as rank.n


def test_the_search_gives_the_online_list_slots_when_it_predicts_what_comes_next(bundle):
    sequences = listening_sequences(session_events(bundle, follow_played_next=True))
    chosen, reranker, report = search_blend(bundle, sequences, search_config(HOLDOUT))
    if chosen.strategy == "learned":  # the re-ranker orders the union: it must have been fit and shipped
        assert len(reranker) > 0 and report["reranker"]["trees"] == len(reranker)
    else:  # a fixed blend: the online list must get a share of the slots
        assert chosen.online_weight > 0
    with_history = report["chosen_ndcg"]["with_history"]
    assert all(with_history[m] > 1.1 * report["baselines"]["offline"][m] for m in with_history)
    assert report["selection_users"]["with_history"][3] > 40 and report["reranker"]["rows"] > 1000


def test_without_learned_in_the_space_no_reranker_is_fit_or_shipped(bundle):
    sequences = listening_sequences(session_events(bundle, follow_played_next=True))
    space = dict(strategy=["interleave", "rrf"], cold_strategy=["interleave"])
    chosen, trees, report = search_blend(bundle, sequences, search_config(HOLDOUT, **space))
    assert chosen.strategy in ("interleave", "rrf") and chosen.online_weight > 0
    assert len(trees) == 0 and report["reranker"]["trees"] == 0


def test_the_search_keeps_the_offline_list_when_online_listens_predict_nothing(bundle):
    sequences = listening_sequences(session_events(bundle, follow_played_next=False))
    _, _, report = search_blend(bundle, sequences, search_config(HOLDOUT))
    for m, value in report["chosen_ndcg"]["with_history"].items():
        assert value >= report["baselines"]["offline"][m]  # never below the offline list on the tuning users


def test_the_chosen_blend_depends_only_on_the_tuning_users(bundle):
    """Rewriting every listen of the users the replay reports on changes nothing the search learns."""
    events = session_events(bundle, follow_played_next=True)
    _, trees, report = search_blend(bundle, listening_sequences(events), search_config(HOLDOUT))
    reported = ~tuning_mask(events["user_id"].to_numpy(), HOLDOUT)
    rewritten = pd.concat([events[~reported], session_events(bundle, False, seed=9,
                                                          users=np.unique(events["user_id"].to_numpy()[reported]))])
    _, same_trees, again = search_blend(bundle, listening_sequences(rewritten), search_config(HOLDOUT))
    assert again == report and all(np.array_equal(a, b) for a, b in zip(vars(trees).values(), vars(same_trees).values()))
    rewritten_tuning = pd.concat([events[reported], session_events(bundle, False, seed=9,
                                                                users=np.unique(events["user_id"].to_numpy()[~reported]))])
    _, _, changed = search_blend(bundle, listening_sequences(rewritten_tuning), search_config(HOLDOUT))
    assert changed["trials"] != report["trials"]  # the test can fail: the tuning users' listens do matter


def test_the_replay_reports_only_on_users_the_search_never_saw(bundle, monkeypatch):
    events = session_events(bundle, follow_played_next=True)
    replayed = []
    from src.recsys.serving import online_replay as replay_module
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
