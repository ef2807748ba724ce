"""Second stage: label window, leakage-free history, candidates, features, sampling, ranker and rank_users()."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from src.recsys.arrays import encode
from src.recsys.evaluation import evaluate_recommendations
from src.recsys.interactions import InteractionMatrix, ranked_frame
from src.recsys.ranking.offline_candidates import NO_RANK, generate_candidates, similar_table_to_arrays
from src.recsys.ranking.dataset import label_candidates, label_window, sample_negatives, window_events
from src.recsys.ranking.features import RANKER_FEATURES, TrackMeta, artist_affinity, genre_affinity, genre_profile
from src.recsys.ranking.history import History, TrackStats, days_before, user_sequence_order
from src.recsys.ranking.model import fit_ranker, top_n
from src.recsys.ranking.pipeline import RankingContext, rank_users, similar_for_recent, training_frame
from src.recsys.topk import similar_items, top_k_scores

from tests.helpers.synthetic import RANK_N, RANK_TRAIN, RANKING, SIMILAR_N, SPLIT_DATE

NS = np.timedelta64(1, "ns")
HOUR = np.timedelta64(1, "h")
DAY = np.timedelta64(1, "D")


def events_frame(rows) -> pd.DataFrame:
    """(user_id, track_id, track_seq, started_at) rows typed like the clean events."""
    users, tracks, seqs, times = zip(*rows)
    return pd.DataFrame({
        "user_id": np.array(users, dtype=np.int32),
        "track_id": np.array(tracks, dtype=np.int32),
        "track_seq": np.array(seqs, dtype=np.int16),
        "started_at": np.array(times, dtype="datetime64[ns]"),
    })


# ---------------------------------------------------------------- label window


def test_label_window_ends_at_the_split_date():
    start, end = label_window("2022-12-16", 14)
    assert end == np.datetime64("2022-12-16T00:00:00", "ns")
    assert start == np.datetime64("2022-12-02T00:00:00", "ns")
    assert end - start == np.timedelta64(14, "D")
    assert start.dtype == end.dtype == np.dtype("datetime64[ns]")


def test_window_events_is_half_open():
    start, end = label_window("2022-12-16", 14)
    events = events_frame([
        (1, 10, 1, start - NS),        # before the window
        (1, 11, 2, start),             # first instant: in
        (1, 12, 3, end - NS),          # last nanosecond: in
        (1, 13, 4, end),               # the split date itself: test period, out
        (1, 14, 5, end + 3 * DAY),     # out
    ])
    assert window_events(events, start, end)["track_id"].tolist() == [11, 12]


def test_label_window_never_overlaps_the_test_period(generated):
    data = generated
    start, end = label_window(SPLIT_DATE, RANK_TRAIN.label_days)
    labels = window_events(data.events, start, end)  # all events, test period included
    assert len(labels) > 0
    assert (labels["started_at"] < np.datetime64(pd.Timestamp(SPLIT_DATE))).all()
    assert (labels["started_at"] >= start).all()
    # the window read from the whole data is exactly the window read from train alone
    from_train = window_events(data.train, start, end)
    assert len(labels) == len(from_train)
    assert labels.reset_index(drop=True).equals(from_train.reset_index(drop=True))


# ---------------------------------------------------------------- history


@pytest.fixture
def small_events() -> pd.DataFrame:
    cutoff = np.datetime64("2022-06-10", "ns")
    rows = [
        (2, 30, 3, cutoff - 1 * DAY),
        (1, 10, 2, cutoff - 5 * DAY),
        (1, 20, 1, cutoff - 9 * DAY),
        (2, 10, 1, cutoff - 30 * DAY),
        (1, 30, 3, cutoff - NS),        # the last nanosecond before the cut-off: kept
        (1, 40, 4, cutoff),             # at the cut-off: dropped
        (2, 40, 4, cutoff + 2 * HOUR),  # after: dropped
        (3, 10, 1, cutoff + DAY),       # user 3 only after: no history at all
        (2, 20, 2, cutoff - 2 * DAY),
    ]
    return events_frame(rows)


CUTOFF = "2022-06-10"


def test_history_drops_events_at_or_after_the_cutoff(small_events):
    history = History.before(small_events, CUTOFF)
    assert history.cutoff == np.datetime64("2022-06-10", "ns")
    assert len(history) == 6
    assert 40 not in history.track_id
    assert history.user_ids.tolist() == [1, 2]
    assert (history.age_days > 0).all()


def test_history_orders_each_user_by_track_seq(small_events):
    history = History.before(small_events.sample(frac=1.0, random_state=1), CUTOFF)
    assert history.indptr.tolist() == [0, 3, 6]
    assert history.track_id.tolist() == [20, 10, 30, 10, 20, 30]
    np.testing.assert_allclose(history.age_days, [9, 5, 1 / 86400e9, 30, 2, 1], rtol=1e-6)
    assert history.track_id.dtype == small_events["track_id"].dtype


def test_history_in_listening_order_skips_the_sort_and_equals_the_shuffled_one(generated):
    """The fast path (events already by user and track_seq) and the sort give the same history, and the
    ages computed a chunk at a time equal one whole-column expression."""
    train = generated.train
    in_order = train.sort_values(["user_id", "track_seq"], kind="stable").reset_index(drop=True)
    user, seq = in_order["user_id"].to_numpy(), in_order["track_seq"].to_numpy()
    assert user_sequence_order(user, seq) is None
    assert user_sequence_order(user[::-1].copy(), seq[::-1].copy()) is not None
    cutoff = np.datetime64("2022-12-02", "ns")
    fast, sorted_ = History.before(in_order, cutoff), History.before(train.sample(frac=1.0, random_state=3), cutoff)
    for name in ("user_ids", "indptr", "track_id", "age_days"):
        assert np.array_equal(getattr(fast, name), getattr(sorted_, name)), name
    started_at = in_order["started_at"].to_numpy()
    keep = started_at < cutoff
    whole = ((cutoff - started_at[keep]) / np.timedelta64(1, "D")).astype(np.float32)
    assert np.array_equal(days_before(cutoff, started_at, keep, chunk=1000), whole)


def test_history_rows_and_events(small_events):
    history = History.before(small_events, CUTOFF)
    assert history.rows_of(np.array([2, 3, 1])).tolist() == [1, -1, 0]
    owner, event = history.events_of(np.array([1, 0]), last=2)
    assert owner.tolist() == [0, 0, 1, 1]
    assert history.track_id[event].tolist() == [20, 30, 10, 30]
    owner, event = history.events_of(np.array([0]))
    assert history.track_id[event].tolist() == [20, 10, 30]


def test_history_of_generated_train_respects_the_cutoff(generated, ranking_setup):
    setup = ranking_setup
    train = generated.train
    history = setup.history
    before = train[train["started_at"] < setup.start]
    assert len(history) == len(before) < len(train)
    assert np.array_equal(history.user_ids, np.sort(before["user_id"].unique()))
    assert (history.age_days >= 1.0).all()  # day-resolution events strictly before a midnight cut-off
    # within each user, events follow track_seq
    seq = before.sort_values(["user_id", "track_seq"])
    assert np.array_equal(history.track_id, seq["track_id"].to_numpy())


def test_track_stats_ignore_events_after_the_cutoff(small_events):
    history = History.before(small_events, CUTOFF)
    vocabulary = np.array([10, 20, 30, 40, 50], dtype=np.int32)
    stats = TrackStats.of(history, vocabulary, recent_days=3)
    assert stats.listeners.tolist() == [2, 2, 2, 0, 0]  # 40 only at/after the cut-off
    assert stats.recent_listeners.tolist() == [0, 1, 2, 0, 0]  # ages <= 3 days: 20 (2d), 30 (1ns, 1d)
    np.testing.assert_allclose(stats.age_days, [30, 9, 1, 0, 0])
    # more events at or after the cut-off change nothing
    later = events_frame([(u, t, 9, np.datetime64("2022-06-10", "ns") + k * HOUR)
                          for k, (u, t) in enumerate([(5, 40), (6, 40), (1, 10), (7, 50), (8, 20)])])
    again = TrackStats.of(History.before(pd.concat([small_events, later]), CUTOFF), vocabulary, 3)
    for name in ("listeners", "recent_listeners", "age_days"):
        assert np.array_equal(getattr(again, name), getattr(stats, name))


# ---------------------------------------------------------------- the leak test


def stage_features(events: pd.DataFrame, cutoff: np.datetime64, users: np.ndarray, model, items) -> tuple:
    """Candidates and features of ``users`` as `rank_train` computes them from ``events`` with cut-off ``cutoff``.

    ALS is not refit: the model is a deterministic function of the interaction matrix, which the
    caller checks is identical; everything else goes through History exactly as in the stage.
    """
    history = History.before(events, cutoff)
    data = InteractionMatrix.from_events(events[events["started_at"].to_numpy() < cutoff])  # as rank_train
    similar = similar_for_recent(model, history, users, RANKING.candidates.recent_listens, SIMILAR_N)
    context = RankingContext.build(history, model, data.matrix, similar, items, RANKING)
    frames = [frame.assign(user_id=batch[frame["user_pos"].to_numpy()]) for batch, frame in context.batches(users)]
    return history, data, pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def leak_case(generated, ranking_setup):
    """Base features of 900 users as of T - W, and the train events plus many events at or after T - W."""
    setup = ranking_setup
    train = generated.train
    cutoff = setup.start
    rng = np.random.default_rng(5)
    users = np.sort(rng.choice(setup.history.user_ids, 900, replace=False))
    _, _, base = stage_features(train, cutoff, users, setup.model, generated.items)

    item_ids = setup.model.item_ids
    top_tracks = item_ids[base["item"].value_counts().index.to_numpy()[:40]]  # the most common candidates
    offsets = np.array([0, 1, 3600 * 10**9, 86400 * 10**9, 5 * 86400 * 10**9, 40 * 86400 * 10**9],
                       dtype="timedelta64[ns]")  # at the cut-off, 1 ns after, ..., past the split date
    rows = []
    # the featurised users listen to their own candidates (the ALS top ones and the charts)
    for position, user in enumerate(users[:400]):
        mine = base.loc[base["user_id"] == user].nsmallest(4, "als_rank")["item"].to_numpy()
        for k, track in enumerate(np.concatenate([item_ids[mine], top_tracks[position % 40:][:2]])):
            rows.append((user, track, offsets[k % len(offsets)]))
    # other users, existing and brand-new, pile onto the most common candidates (charts, track stats)
    others = np.setdiff1d(setup.history.user_ids, users)[:600]
    new_users = np.arange(10**6, 10**6 + 300)
    for position, user in enumerate(np.concatenate([others, new_users])):
        for k in range(6):
            rows.append((user, top_tracks[(position + k) % 20], offsets[k] + (position % 13) * DAY))
    # and a track nobody had before
    rows += [(user, 2_000_000_000, offsets[0]) for user in users[:50]]
    extra_users, extra_tracks, extra_offsets = zip(*rows)
    extra_users = np.array(extra_users, dtype=np.int32)
    last_seq = train.groupby("user_id")["track_seq"].max()
    seq_start = last_seq.reindex(extra_users).fillna(0).to_numpy(np.int64)
    within = pd.Series(extra_users).groupby(extra_users).cumcount().to_numpy()
    extras = pd.DataFrame({
        "user_id": extra_users,
        "track_id": np.array(extra_tracks, dtype=np.int32),
        "track_seq": (seq_start + 1 + within).astype(np.int16),
        "started_at": cutoff + np.array(extra_offsets, dtype="timedelta64[ns]"),
    })
    assert (extras["started_at"] >= cutoff).all() and extras["track_seq"].max() < 2**15 - 1
    augmented = pd.concat([train, extras], ignore_index=True)
    augmented = augmented.iloc[rng.permutation(len(augmented))].reset_index(drop=True)
    return setup, users, base, augmented


def assert_bit_identical(left: pd.DataFrame, right: pd.DataFrame) -> None:
    assert list(left.columns) == list(right.columns)
    assert len(left) == len(right)
    for column in left.columns:
        a, b = left[column].to_numpy(), right[column].to_numpy()
        assert a.dtype == b.dtype, column
        assert a.tobytes() == b.tobytes(), f"column {column} differs"


def test_features_ignore_events_at_or_after_the_cutoff(generated, leak_case):
    """The leak test: thousands of events at/after the cut-off, on the users' own candidates and the
    charts, must change neither the history, nor the ALS input, nor any candidate or feature bit.

    Its sensitivity is checked by the test below, which lets History.before keep events *at* the
    cut-off (an off-by-one `<=`): the same comparison then fails.
    """
    setup, users, base, augmented = leak_case
    history, data, features = stage_features(augmented, setup.start, users, setup.model, generated.items)
    for name in ("user_ids", "indptr", "track_id", "age_days"):
        assert getattr(history, name).tobytes() == getattr(setup.history, name).tobytes(), name
    # the ALS training matrix is identical, so refitting would give the same model
    assert np.array_equal(data.user_ids, setup.feature_data.user_ids)
    assert np.array_equal(data.item_ids, setup.feature_data.item_ids)
    assert (data.matrix != setup.feature_data.matrix).nnz == 0
    assert len(base) > 50 * len(users)
    assert_bit_identical(features, base)


def test_leak_test_detects_an_off_by_one_cutoff(generated, leak_case, monkeypatch):
    """Canary: if History.before kept events at the cut-off (`<=` instead of `<`), features must change.

    Shifting the cut-off by 1 us keeps exactly the events at the cut-off (the extras and the label
    window's first day) and changes the float32 ages of all other (day-resolution) events by far less
    than their rounding, i.e. it is the `<=` bug. (1 us, not 1 ns: History.before goes through
    ``np.datetime64(pd.Timestamp(cutoff), "ns")``, which drops sub-microsecond digits.)
    """
    setup, users, base, augmented = leak_case
    original = History.before.__func__

    def leaky(cls, events, cutoff):
        history = original(cls, events, np.datetime64(pd.Timestamp(cutoff), "ns") + np.timedelta64(1, "us"))
        history.cutoff = np.datetime64(pd.Timestamp(cutoff), "ns")
        return history

    monkeypatch.setattr(History, "before", classmethod(leaky))
    history, _, features = stage_features(augmented, setup.start, users, setup.model, generated.items)
    assert len(history) > len(setup.history)  # the patch does leak
    changed = [column for column in RANKER_FEATURES
               if len(features) != len(base) or features[column].to_numpy().tobytes() != base[column].to_numpy().tobytes()]
    assert len(features) != len(base) or len(changed) >= 5, changed


# ---------------------------------------------------------------- affinity features


def small_meta() -> TrackMeta:
    # items 0, 1: artist 0; item 2: artist 1; item 3: artist 2; genres: 0 -> {0}, 1 -> {0, 1}, 2 -> {1}, 3 -> {2}
    genres = sp.csr_matrix(np.array([[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32))
    return TrackMeta(artist=np.array([0, 0, 1, 2], dtype=np.int32), n_artists=3, genres=genres)


def test_artist_and_genre_affinity_hand_computed():
    meta = small_meta()
    # user 0 listened to items 0 (weight 0.75) and 2 (0.25); user 1 to item 3 (1.0)
    owner, track, weight = np.array([0, 0, 1]), np.array([0, 2, 3]), np.array([0.75, 0.25, 1.0])
    user_pos, item = np.array([0, 0, 0, 1, 1]), np.array([1, 2, 3, 0, 3])
    share, count = artist_affinity(owner, track, weight, user_pos, item, meta)
    np.testing.assert_allclose(share, [0.75, 0.25, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(count, [1, 1, 0, 0, 1])
    affinity = genre_affinity(genre_profile(owner, track, weight, meta, n_users=2), user_pos, item, meta.genres)
    # user 0's genre profile: genre 0 = 0.75, genre 1 = 0.25; user 1's: genre 2 = 1
    np.testing.assert_allclose(affinity, [0.5 * 0.75 + 0.5 * 0.25, 0.25, 0.0, 0.0, 1.0])


def test_artist_affinity_ignores_listens_of_unknown_artists():
    meta = TrackMeta(artist=np.array([0, 1, -1], dtype=np.int32), n_artists=2,
                     genres=sp.csr_matrix(np.eye(3, dtype=np.float32)))
    # user 0 heard item 0 (artist 0); user 1 heard item 2 (artist unknown); candidate: user 0 <- item 1 (artist 1)
    share, count = artist_affinity(np.array([0, 1]), np.array([0, 2]), np.array([1.0, 1.0]),
                                   np.array([0]), np.array([1]), meta)
    assert share.tolist() == [0.0] and count.tolist() == [0.0]  # user 0 never heard artist 1


# ---------------------------------------------------------------- labels and negatives


def test_label_candidates_marks_exactly_the_label_pairs():
    user_ids = np.array([5, 7, 9], dtype=np.int32)
    item_ids = np.array([100, 200, 300], dtype=np.int32)
    candidates = pd.DataFrame({"user_pos": np.array([0, 0, 0, 1, 1, 2], dtype=np.int32),
                               "item": np.array([0, 1, 2, 0, 2, 1], dtype=np.int32)})
    t = np.datetime64("2022-12-05", "ns")
    labels = events_frame([
        (5, 200, 1, t), (5, 200, 2, t + DAY),  # a repeated listen: still one positive
        (7, 100, 1, t),
        (7, 999, 2, t),   # unknown track
        (8, 100, 1, t),   # unknown user
        (9, 300, 1, t),   # a known pair that is not a candidate
    ])
    label = label_candidates(candidates, user_ids, item_ids, labels)
    assert label.tolist() == [0, 1, 0, 1, 0, 0]
    assert label.dtype == np.int8


def test_sample_negatives_small_case():
    user_pos = np.array([0] * 7 + [1] * 3 + [2] * 2 + [3] * 4)
    label = np.array([1, 0, 0, 1, 0, 0, 0] + [0, 0, 0] + [0, 1] + [1, 1, 1, 0])
    keep = sample_negatives(user_pos, label, 2, np.random.default_rng(0))
    assert keep.dtype == bool and len(keep) == len(label)
    assert keep[label == 1].all()
    assert not keep[user_pos == 1].any()  # no positive: dropped
    kept_negatives = np.bincount(user_pos[keep & (label == 0)], minlength=4)
    assert kept_negatives.tolist() == [2, 0, 1, 1]


def test_sample_negatives_random_case():
    rng = np.random.default_rng(3)
    user_pos = np.sort(rng.integers(0, 200, 20_000))
    label = (rng.random(len(user_pos)) < 0.05).astype(np.int8)
    keep = sample_negatives(user_pos, label, 20, np.random.default_rng(42))
    assert keep[label == 1].all()
    has_positive = np.bincount(user_pos, weights=label, minlength=200) > 0
    assert not keep[~has_positive[user_pos]].any()
    negatives = np.bincount(user_pos[keep & (label == 0)], minlength=200)
    available = np.bincount(user_pos[label == 0], minlength=200)
    assert np.array_equal(negatives[has_positive], np.minimum(available, 20)[has_positive])
    # deterministic for a seed, different for another one
    assert np.array_equal(keep, sample_negatives(user_pos, label, 20, np.random.default_rng(42)))
    assert not np.array_equal(keep, sample_negatives(user_pos, label, 20, np.random.default_rng(43)))
    # the order of the rows does not matter for who is kept (same per-user counts)
    shuffle = rng.permutation(len(user_pos))
    shuffled = sample_negatives(user_pos[shuffle], label[shuffle], 20, np.random.default_rng(42))
    assert np.array_equal(np.bincount(user_pos[shuffle][shuffled], minlength=200),
                          np.bincount(user_pos[keep], minlength=200))


# ---------------------------------------------------------------- candidates


@pytest.fixture(scope="module")
def candidates_case(ranking_setup):
    setup = ranking_setup
    users = setup.users[::3]
    sizes = RANKING.candidates
    frame = generate_candidates(setup.context.sources, setup.history, users, sizes.als, sizes.recent_listens)
    return setup, users, frame


def test_candidates_are_unseen_and_unique(generated, candidates_case):
    setup, users, frame = candidates_case
    sources = setup.context.sources
    assert frame["user_pos"].between(0, len(users) - 1).all()
    assert not frame.duplicated(["user_pos", "item"]).any()
    rows = encode(users, sources.model.user_ids)
    seen = np.asarray(sources.seen[rows[frame["user_pos"].to_numpy()], frame["item"].to_numpy()]).ravel()
    assert (seen == 0).all()
    # the same with real ids against the history's listens
    pairs = pd.DataFrame({"user_id": users[frame["user_pos"].to_numpy()],
                          "track_id": sources.model.item_ids[frame["item"].to_numpy()]})
    before = generated.train
    before = before[before["started_at"] < setup.start][["user_id", "track_id"]].drop_duplicates()
    assert len(pairs.merge(before)) == 0


def test_candidate_als_rank(candidates_case):
    setup, users, frame = candidates_case
    sources = setup.context.sources
    n_als = RANKING.candidates.als
    rows = encode(users, sources.model.user_ids)
    indices, _ = top_k_scores(sources.model.user_factors[rows], sources.model.item_factors, n_als,
                              exclude=sources.seen[rows])
    from_als = frame[frame["als_rank"] != NO_RANK]
    assert frame["als_rank"].dtype == np.float32
    assert from_als["als_rank"].between(1, n_als).all()
    assert (from_als.groupby("user_pos").size() == n_als).all()
    assert from_als["user_pos"].nunique() == len(users)
    user_pos, slot = np.nonzero(indices >= 0)
    expected = pd.DataFrame({"user_pos": user_pos, "item": indices[user_pos, slot], "als_rank": slot + 1.0})
    got = from_als[["user_pos", "item", "als_rank"]].sort_values(["user_pos", "als_rank"]).reset_index(drop=True)
    assert np.array_equal(got.to_numpy(np.float64), expected.to_numpy(np.float64))


def test_candidate_chart_flags(candidates_case):
    setup, users, frame = candidates_case
    sources = setup.context.sources
    assert len(sources.popular) == RANKING.candidates.popular
    assert len(sources.trending) == RANKING.candidates.trending
    assert not np.array_equal(np.sort(sources.popular), np.sort(sources.trending))  # the flags can disagree
    item = frame["item"].to_numpy()
    assert np.array_equal(frame["from_popular"].to_numpy(), np.isin(item, sources.popular).astype(np.float32))
    assert np.array_equal(frame["from_trending"].to_numpy(), np.isin(item, sources.trending).astype(np.float32))
    # every chart track a user has not heard is among their candidates
    rows = encode(users, sources.model.user_ids)
    for pos in (0, len(users) // 2, len(users) - 1):
        unseen_chart = np.setdiff1d(np.union1d(sources.popular, sources.trending), sources.seen[rows[pos]].indices)
        assert np.isin(unseen_chart, item[frame["user_pos"].to_numpy() == pos]).all()
    # the charts are the most-listened tracks over the history, and over its recent days
    stats = setup.context.stats
    assert stats.listeners[sources.popular].min() >= np.delete(stats.listeners, sources.popular).max()
    assert stats.recent_listeners[sources.trending].min() >= np.delete(stats.recent_listeners, sources.trending).max()


def test_candidate_similar_evidence(candidates_case):
    setup, users, frame = candidates_case
    sources, history = setup.context.sources, setup.history
    n_recent = RANKING.candidates.recent_listens
    for pos in (0, 7, len(users) - 1):
        _, event = history.events_of(history.rows_of(users[[pos]]), last=n_recent)
        recent = encode(history.track_id[event], sources.model.item_ids)
        pointed = sources.similar_items[recent]
        best = {}
        for source_row, scores in zip(pointed, sources.similar_scores[recent]):
            for item, score in zip(source_row, scores):
                if item >= 0:
                    best[item] = max(best.get(item, -np.inf), score)
        mine = frame[frame["user_pos"] == pos]
        with_sim = mine[mine["sim_sources"] > 0]
        unseen = {item for item in best if item not in set(sources.seen[encode(users[[pos]], sources.model.user_ids)[0]].indices)}
        assert set(with_sim["item"]) == unseen
        for item, score in zip(with_sim["item"], with_sim["sim_score"]):
            assert score == np.float32(best[item])
        assert (mine.loc[mine["sim_sources"] == 0, "sim_score"] == 0).all()


# ---------------------------------------------------------------- model helpers


def test_top_n_orders_each_users_best_rows():
    user_pos = np.array([1, 0, 1, 0, 2, 1, 0, 1])
    scores = np.array([0.5, 0.1, 0.9, 0.7, 0.3, 0.2, 0.4, 0.8])
    best = top_n(user_pos, scores, 2)
    assert best.tolist() == [3, 6, 2, 7, 4]
    everything = top_n(user_pos, scores, 10)
    assert sorted(everything.tolist()) == list(range(8))
    assert everything.tolist() == [3, 6, 1, 2, 7, 0, 5, 4]


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def trained(ranking_setup, tmp_path_factory):
    setup = ranking_setup
    frame = training_frame(setup.context, setup.users, setup.labels, RANK_TRAIN.negatives_per_user,
                           np.random.default_rng(42), logging.getLogger("test"))
    ranker, report = fit_ranker(frame, RANK_TRAIN.model)
    return frame, ranker, report


def test_two_fits_save_the_same_bytes(trained, tmp_path):
    """No GUID, timestamp or machine thread count in the file: a refit of the same frame is byte-identical."""
    frame, ranker, _ = trained
    again, _ = fit_ranker(frame, RANK_TRAIN.model)
    ranker.save_model(str(tmp_path / "first.cbm"))
    again.save_model(str(tmp_path / "second.cbm"))
    assert (tmp_path / "first.cbm").read_bytes() == (tmp_path / "second.cbm").read_bytes()
    assert "model_guid" not in again.get_metadata().keys()


def test_training_frame(ranking_setup, trained):
    frame, _, report = trained
    setup = ranking_setup
    assert list(frame.columns) == ["user_id", "item", "label", *RANKER_FEATURES]
    assert set(frame["user_id"]) <= set(setup.users)
    assert frame.groupby("user_id")["label"].max().eq(1).all()  # users without a positive are dropped
    assert (frame.groupby("user_id")["label"].apply(lambda s: (s == 0).sum()) <= RANK_TRAIN.negatives_per_user).all()
    assert 0.05 < frame["label"].mean() < 0.6
    assert np.isfinite(frame[RANKER_FEATURES].to_numpy()).all()
    # every positive is a real label-window listen of that user
    positives = pd.DataFrame({"user_id": frame.loc[frame["label"] == 1, "user_id"].to_numpy(),
                              "track_id": setup.model.item_ids[frame.loc[frame["label"] == 1, "item"].to_numpy()]})
    labelled = setup.labels[["user_id", "track_id"]].drop_duplicates()
    assert len(positives.merge(labelled)) == len(positives)
    assert report["train_rows"] + report["validation_rows"] == len(frame)
    assert report["validation_ndcg_at_10"] > 0.4


@pytest.fixture(scope="module")
def final_recs(generated, train_matrix, als_model, trained):
    """As the `rank` stage: history as of T, the ALS of the whole train, `similar` from its table."""
    _, ranker, _ = trained
    data = generated
    model, matrix = als_model, train_matrix
    indices, scores = similar_items(model.item_factors, SIMILAR_N)
    table = ranked_frame(model.item_ids, model.item_ids, indices, scores, "track_id", "similar_track_id")
    similar = similar_table_to_arrays(table, model.item_ids, SIMILAR_N)
    context = RankingContext.build(History.before(data.train, SPLIT_DATE), model, matrix.matrix, similar,
                                   data.items, RANKING)
    return rank_users(context, model.user_ids, lambda features: ranker.predict(features.to_numpy()), RANK_N)


def test_recommend_gives_every_train_user_unseen_unique_tracks(generated, final_recs):
    recs, n = final_recs, RANK_N
    train = generated.train
    assert set(recs["user_id"]) == set(train["user_id"])
    assert recs["track_id"].isin(train["track_id"].unique()).all()  # real ids, not item codes
    assert {name: str(dtype) for name, dtype in recs.dtypes.items()} == {
        "user_id": "int32", "track_id": "int32", "score": "float32", "rank": "int16"}
    assert not recs.duplicated(["user_id", "track_id"]).any()
    assert len(recs.merge(train[["user_id", "track_id"]].drop_duplicates())) == 0
    sizes = recs.groupby("user_id").size()
    assert sizes.max() == n and (sizes <= n).all()
    assert sizes.eq(n).mean() > 0.95
    ordered = recs.sort_values(["user_id", "rank"])
    expected_rank = ordered.groupby("user_id").cumcount().to_numpy() + 1
    assert np.array_equal(ordered["rank"].to_numpy(), expected_rank)
    step = np.diff(ordered["score"].to_numpy())
    assert (step[np.diff(ordered["user_id"].to_numpy()) == 0] <= 0).all()


def test_final_recommendations_are_not_worse_than_als(als_recommendations, evaluation_set, final_recs):
    """Loose sanity check (final ndcg@10 ~0.37 vs ALS ~0.33 here): catches a broken ranker or inverted scores."""
    data = evaluation_set
    final = evaluate_recommendations(final_recs, data, [10])["ndcg_at_10"]
    als = evaluate_recommendations(als_recommendations, data, [10])["ndcg_at_10"]
    assert final > 0.95 * als, (final, als)
