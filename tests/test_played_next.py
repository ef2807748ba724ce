"""The played-next table: hand-made user-days with exactly computed scores, and the vectorised batches
against a plain per-session reference on random listens."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
import yaml

from src.recsys.columns import NEXT_TRACK, RANK, SCORE, STARTED_AT, TRACK, TRACK_SEQ, USER
import scipy.sparse as sp

from src.recsys.sequential_rules import (Listens, played_next, push_merged, ranked_pairs, row_ranges, split_rows,
                                        top_per_row, transition_scores, user_batches)
from tests.helpers import REPO_ROOT
from tests.helpers.raw import run_stage

DEFAULTS = dict(window=5, distance_decay=0.5, popularity_exponent=0.0, min_support=0.0, n=20)


def listens(*days: tuple[int, str, list[int]]) -> pd.DataFrame:
    """Train frame from (user, day, tracks in listening order); track_seq counts on per user."""
    rows = []
    seq: dict[int, int] = defaultdict(int)
    for user, day, tracks in days:
        for track in tracks:
            seq[user] += 1
            rows.append((user, track, seq[user], pd.Timestamp(day)))
    frame = pd.DataFrame(rows, columns=[USER, TRACK, TRACK_SEQ, STARTED_AT])
    return frame.astype({USER: np.int32, TRACK: np.int32, TRACK_SEQ: np.int16})


def table(train: pd.DataFrame, **overrides) -> dict[tuple[int, int], float]:
    frame = played_next(train, **{**DEFAULTS, **overrides})
    return {(a, b): s for a, b, s in zip(frame[TRACK], frame[NEXT_TRACK], frame[SCORE])}


def test_a_day_gives_each_next_track_its_decayed_share_of_the_continuations():
    # raw(10, 20) = 1, raw(10, 30) = 0.5 (distance 2), raw(20, 30) = 1; out(10) = 1.5, out(20) = 1
    got = table(listens((1, "2022-05-01", [10, 20, 30])))
    assert got == pytest.approx({(10, 20): 1 / 1.5, (10, 30): 0.5 / 1.5, (20, 30): 1.0})


def test_the_decay_sets_the_weight_of_a_farther_listen():
    got = table(listens((1, "2022-05-01", [10, 20, 30])), distance_decay=0.25)
    assert got[(10, 30)] == pytest.approx(0.25 / 1.25)


def test_a_day_boundary_breaks_pairs():
    got = table(listens((1, "2022-05-01", [10, 20]), (1, "2022-05-02", [30, 40])))
    assert set(got) == {(10, 20), (30, 40)}


def test_pairs_stay_within_one_user():
    got = table(listens((1, "2022-05-01", [10, 20]), (2, "2022-05-01", [30, 40])))
    assert set(got) == {(10, 20), (30, 40)}


def test_two_users_add_up():
    # raw(10, 20) = 1, raw(10, 30) = 0.5 (user 1) + 1 (user 2): out(10) = 2.5
    got = table(listens((1, "2022-05-01", [10, 20, 30]), (2, "2022-05-03", [10, 30])))
    assert got[(10, 20)] == pytest.approx(1 / 2.5) and got[(10, 30)] == pytest.approx(1.5 / 2.5)


def test_the_window_cuts_farther_pairs():
    got = table(listens((1, "2022-05-01", [10, 20, 30, 40])), window=2)
    assert set(got) == {(10, 20), (10, 30), (20, 30), (20, 40), (30, 40)}
    assert got[(10, 30)] == pytest.approx(0.5 / 1.5)


def test_popularity_damping_turns_the_order_towards_the_rarer_next_track():
    # 10 -> 20 by two users, 10 -> 30 by one; 20 has 6 listeners, 30 one
    days = [(1, "2022-05-01", [10, 20]), (2, "2022-05-01", [10, 20]), (3, "2022-05-01", [10, 30])]
    train = listens(*days, *[(user, "2022-05-02", [20]) for user in range(4, 8)])
    plain, damped = table(train), table(train, popularity_exponent=1.0)
    assert plain[(10, 20)] == pytest.approx(2 / 3) and plain[(10, 30)] == pytest.approx(1 / 3)
    assert damped[(10, 20)] == pytest.approx(2 / 3 / 6) and damped[(10, 30)] == pytest.approx(1 / 3 / 1)
    ranked = played_next(train, **{**DEFAULTS, "popularity_exponent": 1.0})
    assert ranked.loc[ranked[TRACK] == 10, NEXT_TRACK].tolist() == [30, 20]


def test_listeners_count_users_not_listens():
    # 20 heard twice by user 1 (two days) and once by user 2: two listeners, so 10 -> 20 scores 1 / 2
    train = listens((1, "2022-05-01", [10, 20]), (1, "2022-05-02", [20]), (2, "2022-05-02", [20]))
    assert table(train, popularity_exponent=1.0)[(10, 20)] == pytest.approx(1 / 2)


def test_min_support_drops_weak_pairs_but_not_their_share_of_the_continuations():
    got = table(listens((1, "2022-05-01", [10, 20, 30])), min_support=1.0)
    assert got == pytest.approx({(10, 20): 1 / 1.5, (20, 30): 1.0})


def test_top_n_keeps_the_best_and_breaks_ties_by_the_lower_next_track():
    train = listens((1, "2022-05-01", [10, 40]), (2, "2022-05-01", [10, 30]), (3, "2022-05-01", [10, 20]),
                    (4, "2022-05-01", [10, 50]), (5, "2022-05-01", [10, 50]))
    frame = played_next(train, **{**DEFAULTS, "n": 3})
    rows = frame[frame[TRACK] == 10]
    assert rows[NEXT_TRACK].tolist() == [50, 20, 30] and rows[RANK].tolist() == [1, 2, 3]
    assert frame.dtypes.to_dict() == {TRACK: np.int32, NEXT_TRACK: np.int32, SCORE: np.float32, RANK: np.int16}


def test_a_repeated_track_is_never_its_own_next():
    assert set(table(listens((1, "2022-05-01", [10, 10, 20])))) == {(10, 20)}


def random_listens(seed: int, n_users: int = 40, n_tracks: int = 30) -> pd.DataFrame:
    """Random user-days in (user, day, track_seq) order, a zipf-ish track choice."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, n_tracks + 1)
    days = [(user, f"2022-05-0{day}", list(rng.choice(n_tracks, rng.integers(1, 9), p=weights / weights.sum())))
            for user in range(n_users) for day in range(1, 1 + rng.integers(1, 4))]
    return listens(*days)


def reference(train: pd.DataFrame, window: int, distance_decay: float, popularity_exponent: float,
              min_support: float, n: int) -> dict[tuple[int, int], float]:
    """The formula of the module docstring, one session at a time (a test-only loop)."""
    raw: dict[tuple[int, int], float] = defaultdict(float)
    for _, day in train.sort_values([USER, STARTED_AT, TRACK_SEQ]).groupby([USER, STARTED_AT], sort=False):
        tracks = day[TRACK].tolist()
        for i, a in enumerate(tracks):
            for distance, b in enumerate(tracks[i + 1:i + 1 + window], start=1):
                if a != b:
                    raw[(a, b)] += distance_decay ** (distance - 1)
    out: dict[int, float] = defaultdict(float)
    for (a, _), weight in raw.items():
        out[a] += weight
    listeners = train.groupby(TRACK)[USER].nunique()
    scores = {(a, b): w / out[a] / listeners[b] ** popularity_exponent for (a, b), w in raw.items() if w >= min_support}
    best = sorted(scores, key=lambda pair: (pair[0], -scores[pair], pair[1]))
    rank: dict[int, int] = defaultdict(int)
    kept = {}
    for pair in best:
        rank[pair[0]] += 1
        if rank[pair[0]] <= n:
            kept[pair] = scores[pair]
    return kept


@pytest.mark.parametrize("batch_listens", [1, 7, 10_000])
def test_batches_and_unsorted_input_match_the_per_session_reference(batch_listens):
    train = random_listens(seed=3)
    params = dict(window=3, distance_decay=0.7, popularity_exponent=0.5, min_support=0.8, n=4)
    expected = reference(train, **params)
    shuffled = train.sample(frac=1.0, random_state=1).reset_index(drop=True)
    for frame in (train, shuffled):
        got = table(frame, **params, batch_listens=batch_listens)
        assert list(got) == list(expected)  # same pairs in the same (track, rank) order
        assert list(got.values()) == pytest.approx(list(expected.values()), rel=1e-5)


def test_user_batches_cut_only_at_user_boundaries():
    users = np.array([1, 1, 1, 2, 3, 3, 4], dtype=np.int32)
    assert user_batches(users, 2).tolist() == [0, 3, 4, 6, 7]
    assert user_batches(users, 100).tolist() == [0, 7]


def test_the_stage_writes_the_table_from_the_train_split(tmp_path):
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["played_next"].update(min_support=0.0, popularity_exponent=0.0)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "data" / "split").mkdir(parents=True)
    listens((1, "2022-05-01", [10, 20, 30])).to_parquet(tmp_path / "data" / "split" / "train.parquet")
    result = run_stage("played_next", tmp_path)
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(tmp_path / "data" / "recommendations" / "played_next.parquet")
    assert frame[[TRACK, NEXT_TRACK, RANK]].values.tolist() == [[10, 20, 1], [10, 30, 2], [20, 30, 1]]
    assert frame[SCORE].tolist() == pytest.approx([1 / 1.5, 0.5 / 1.5, 1.0])


def test_listens_read_row_group_by_row_group_equal_the_frame_s_columns(tmp_path):
    train = random_listens(seed=5)
    train.to_parquet(tmp_path / "train.parquet", row_group_size=17)
    read, expected = Listens.read(tmp_path / "train.parquet"), Listens.from_frame(train)
    for name in ("users", "days", "seqs", "tracks"):
        assert getattr(read, name).tolist() == getattr(expected, name).tolist()
        assert getattr(read, name).dtype == getattr(expected, name).dtype
    assert read.days.dtype == np.int32 and read.days[0] == (pd.Timestamp("2022-05-01") - pd.Timestamp(0)).days
    pd.testing.assert_frame_equal(played_next(read, **DEFAULTS), played_next(train, **DEFAULTS))


def test_row_ranges_cut_the_rows_into_about_equal_ranges():
    assert row_ranges(10, 4).tolist() == [0, 2, 5, 7, 10]
    assert row_ranges(3, 8).tolist() == [0, 1, 2, 3]
    assert row_ranges(0, 8).tolist() == [0]


def random_parts(seeds=(1, 2, 3)) -> list[sp.csr_matrix]:
    rng = np.random.default_rng(0)
    parts = []
    for seed in seeds:
        part = sp.random(40, 30, density=0.3, random_state=seed, dtype=np.float32, format="csr")
        part.data = rng.choice(np.array([0.25, 0.5, 1.0, 1.5], np.float32), part.nnz)  # ties within rows
        parts.append(part)
    return parts


@pytest.mark.parametrize("ranges", [1, 3, 40, 64])
def test_merging_and_ranking_by_ranges_of_rows_equals_the_whole_matrices(ranges):
    cuts = row_ranges(40, ranges)
    a, b, c = random_parts()
    listeners = np.random.default_rng(1).integers(0, 5, 30)
    whole = top_per_row(transition_scores(a + b + c, listeners, 0.5, 0.5), 4)  # binary fractions: exact sums
    stack = [split_rows(a, cuts)]
    for part in (b, c):
        push_merged(stack, split_rows(part, cuts))
    got = ranked_pairs(stack, cuts, listeners, 0.5, 0.5, 4)
    for got_column, expected in zip(got, whole):
        assert got_column.tolist() == expected.tolist()
