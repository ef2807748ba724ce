"""The synthetic generator at a tiny scale: the real files' schema, determinism, dirt, sessions and ground truth."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from src.recsys.synthetic import SessionConfig, generate_dataset, has_ground_truth, load_ground_truth
from src.recsys.synthetic.catalog import build_catalog
from src.recsys.synthetic.listening import ALBUM, ChunkTastes, draw_sessions
from src.recsys.synthetic.preferences import preference_matrix
from src.recsys.validation import validate_raw_dir

SCALE = 0.002
SEED = 42
CHUNK_USERS = 700  # several chunks at this scale (2,740 users)
RAW_FILES = ("tracks.parquet", "catalog_names.parquet", "interactions.parquet")
LOGGER = logging.getLogger("test_synthetic")
SESSIONS = SessionConfig(mean_length=8.0, continue_share=0.35, album_share=0.5, new_release_share=0.3,
                         new_release_days=30)
INDEPENDENT = dataclasses.replace(SESSIONS, mean_length=1.0, continue_share=0.0)  # one listen per session


def generate(folder: Path, seed: int = SEED, sessions: SessionConfig = SESSIONS) -> Path:
    folder.mkdir(parents=True)
    generate_dataset(folder, SCALE, seed, CHUNK_USERS, sessions, LOGGER)
    return folder


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synthetic") / "a")


@pytest.fixture(scope="module")
def tables(synthetic) -> dict[str, pa.Table]:
    return {name: pq.read_table(synthetic / name) for name in RAW_FILES}


@pytest.fixture(scope="module")
def events(tables) -> pd.DataFrame:
    return tables["interactions.parquet"].to_pandas()


def test_files_pass_validation(synthetic):
    validate_raw_dir(synthetic)
    assert has_ground_truth(synthetic)


def test_tracks_schema(tables):
    schema = tables["tracks.parquet"].schema
    assert schema.names == ["track_id", "albums", "artists", "genres"]
    assert schema.field("track_id").type == pa.int64()
    for column in ("albums", "artists", "genres"):
        assert pa.types.is_list(schema.field(column).type), column
        assert schema.field(column).type.value_type == pa.int64(), column


def test_catalog_names_schema(tables):
    table = tables["catalog_names.parquet"]
    assert table.schema.names == ["id", "type", "name"]
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("type").type == pa.string()
    assert table.schema.field("name").type == pa.string()
    assert set(table["type"].to_pylist()) == {"album", "artist", "genre", "track"}
    assert table["name"].null_count == 0


def test_interactions_schema(tables):
    schema = tables["interactions.parquet"].schema
    assert schema.names[:4] == ["user_id", "track_id", "track_seq", "started_at"]
    assert [schema.field(n).type for n in schema.names[:4]] == [
        pa.int32(), pa.int32(), pa.int16(), pa.timestamp("ns")]
    assert all(tables["interactions.parquet"][n].null_count == 0 for n in schema.names[:4])


def test_started_at_is_midnight_within_2022(events):
    started = events["started_at"]
    assert (started == started.dt.normalize()).all()
    assert started.min() >= pd.Timestamp("2022-01-01")
    assert started.max() < pd.Timestamp("2023-01-01")


def test_track_seq_counts_each_users_events_in_time_order(events):
    assert events["track_seq"].min() == 1
    by_seq = events.sort_values(["user_id", "track_seq"], kind="stable")
    expected = by_seq.groupby("user_id").cumcount().to_numpy() + 1
    assert (by_seq["track_seq"].to_numpy() == expected).all()  # 1..n without gaps or repeats
    later = by_seq.groupby("user_id")["started_at"].diff().dropna()
    assert (later >= pd.Timedelta(0)).all()  # seq order is time order


def test_no_repeated_user_track_pair(events):
    assert not events.duplicated(["user_id", "track_id"]).any()


def test_dirty_records_present(tables, events):
    tracks = tables["tracks.parquet"]
    catalog = tables["catalog_names.parquet"].to_pandas()
    track_ids = tracks["track_id"].to_numpy()

    empty = {c: int((pa.compute.list_value_length(tracks[c]).to_numpy(zero_copy_only=False) == 0).sum())
             for c in ("albums", "artists", "genres")}
    assert empty["genres"] > 0 and empty["artists"] > 0, empty

    genre_ids = catalog.loc[catalog["type"] == "genre", "id"].to_numpy()
    used_genres = pa.compute.list_flatten(tracks["genres"]).to_numpy()
    assert np.isin(used_genres, genre_ids, invert=True).any()  # unknown genre ids

    for column, kind in (("albums", "album"), ("artists", "artist")):
        used = pa.compute.list_flatten(tracks[column]).to_numpy()
        assert np.isin(used, catalog.loc[catalog["type"] == kind, "id"], invert=True).any(), kind

    assert len(track_ids) > len(np.unique(track_ids))  # duplicated track ids
    assert np.isin(events["track_id"].unique(), track_ids, invert=True).any()  # ghost tracks
    assert (events.groupby("user_id").size() <= 3).any()  # users with too few events
    named = catalog.loc[catalog["type"] == "track", "id"]
    assert np.isin(track_ids, named, invert=True).any()  # tracks without a name


def test_tiny_scale_sizes(tables, events):
    assert 1_500 < tables["tracks.parquet"].num_rows < 2_500
    assert events["user_id"].nunique() > 2_000
    assert len(events) > 10_000


def test_deterministic_for_a_seed(tmp_path, synthetic):
    again = generate(tmp_path / "b")
    for name in RAW_FILES:
        assert (again / name).read_bytes() == (synthetic / name).read_bytes(), name
    for name in sorted(p.name for p in (synthetic / "ground_truth").iterdir()):
        assert (again / "ground_truth" / name).read_bytes() == (synthetic / "ground_truth" / name).read_bytes(), name


def test_another_seed_gives_other_data(tmp_path, tables):
    other = generate(tmp_path / "c", seed=SEED + 1)
    for name in ("tracks.parquet", "interactions.parquet"):
        assert not pq.read_table(other / name).equals(tables[name]), name


def test_ground_truth_matches_the_files(synthetic, tables, events):
    truth = load_ground_truth(synthetic)
    assert set(truth.users["user_id"]) == set(events["user_id"])
    assert set(events["track_id"]) <= set(truth.tracks["track_id"])
    assert set(tables["tracks.parquet"]["track_id"].to_pylist()) <= set(truth.tracks["track_id"])
    assert np.allclose(truth.users[["p_genre", "p_artist", "p_popular"]].sum(axis=1), 1.0)
    assert truth.tracks["genre_idx"].max() < truth.n_genres
    assert truth.tracks["artist_idx"].max() < truth.n_artists


def test_preference_matrix_shape_and_nonnegative(synthetic):
    truth = load_ground_truth(synthetic)
    users = truth.users["user_id"].to_numpy()[::50]
    scores = preference_matrix(truth, users, 200)
    assert scores.shape == (len(users), len(truth.tracks))
    assert (scores >= 0).all()
    assert (scores.sum(axis=1) > 0).all()


@pytest.mark.parametrize("day", [0, 364])
def test_preference_matrix_rows_are_distributions(synthetic, day):
    truth = load_ground_truth(synthetic)
    users = truth.users["user_id"].to_numpy()
    sums = preference_matrix(truth, users, day).sum(axis=1)
    np.testing.assert_allclose(sums, 1.0, atol=1e-6)


def test_track_sampler_falls_back_to_charts_for_a_group_without_tracks():
    from src.recsys.synthetic.listening import TrackSampler

    class FakeCatalog:
        tracks = pd.DataFrame({
            "track_id": np.arange(4, dtype=np.int64), "genre_idx": np.array([0, 0, 1, 1], dtype=np.int32),
            "artist_idx": np.array([0, 1, 1, 2], dtype=np.int32), "base_weight": np.ones(4),
            "release_day": np.full(4, -1, dtype=np.int32), "peak_days": np.full(4, 10.0), "boost": np.ones(4),
        })

    sampler = TrackSampler(FakeCatalog())
    sampler.set_period(0)
    rng = np.random.default_rng(0)
    chosen = sampler.within(rng, "artist_idx", np.array([0, 2, 3, 9]))  # artists 3 and 9 have no track
    assert chosen[0] == 0 and chosen[1] == 3
    assert ((chosen >= 0) & (chosen < 4)).all()


@pytest.fixture(scope="module")
def independent_events(tmp_path_factory) -> pd.DataFrame:
    folder = generate(tmp_path_factory.mktemp("synthetic") / "independent", sessions=INDEPENDENT)
    return pd.read_parquet(folder / "interactions.parquet")


def sequence_shares(events: pd.DataFrame) -> dict[str, float]:
    """Among consecutive listens of a user on one day: the share by the same artist, and the share that
    step to the next track of the same album (album order: ascending track id within the album)."""
    tracks = build_catalog(np.random.default_rng(SEED), SCALE).tracks  # the generator's first draws
    tracks = tracks.sort_values(["album_idx", "track_id"])
    album_rank = tracks.groupby("album_idx").cumcount().to_numpy()
    tracks = tracks.assign(album_rank=album_rank).set_index("track_id")
    ordered = events.sort_values(["user_id", "track_seq"])
    known = tracks.reindex(ordered["track_id"].to_numpy())  # ghost tracks are in the catalog too
    artist, album, rank = (known[c].to_numpy() for c in ("artist_idx", "album_idx", "album_rank"))
    user, day = ordered["user_id"].to_numpy(), ordered["started_at"].to_numpy()
    pair = (user[1:] == user[:-1]) & (day[1:] == day[:-1])
    same_album = pair & (album[1:] == album[:-1])
    return {
        "same_artist": float((pair & (artist[1:] == artist[:-1])).sum() / pair.sum()),
        "album_step": float((same_album & (rank[1:] == rank[:-1] + 1)).sum() / pair.sum()),
        "per_user_day": float(len(ordered) / ordered.groupby(["user_id", "started_at"]).ngroups),
    }


def test_independent_listens_are_first_listens_in_time_order(independent_events):
    by_seq = independent_events.sort_values(["user_id", "track_seq"], kind="stable")
    assert (by_seq["track_seq"].to_numpy() == by_seq.groupby("user_id").cumcount().to_numpy() + 1).all()
    assert (by_seq.groupby("user_id")["started_at"].diff().dropna() >= pd.Timedelta(0)).all()
    assert not independent_events.duplicated(["user_id", "track_id"]).any()


def test_sessions_make_consecutive_listens_share_artist_and_album_order(events, independent_events):
    sessions, independent = sequence_shares(events), sequence_shares(independent_events)
    assert sessions["same_artist"] > independent["same_artist"] + 0.1, (sessions, independent)
    assert sessions["album_step"] > 5 * independent["album_step"] + 0.01, (sessions, independent)
    assert sessions["per_user_day"] > 1.5 * independent["per_user_day"], (sessions, independent)


def test_sessions_keep_the_event_count_per_user(events, independent_events):
    with_sessions = events.groupby("user_id").size()
    without = independent_events.groupby("user_id").size()
    assert abs(len(events) / len(independent_events) - 1.0) < 0.05
    assert abs(with_sessions.median() / without.median() - 1.0) < 0.1


def test_continuations_carry_the_thread_and_resume_albums(synthetic):
    truth = load_ground_truth(synthetic)
    from src.recsys.synthetic.listening import Users

    users = Users(table=truth.users.assign(join_day=np.int32(0), leave_day=np.int32(364)),
                  genres=truth.user_genres, artists=truth.user_artists)
    tastes = ChunkTastes.of(users, slice(0, 50))
    rng = np.random.default_rng(0)
    cfg = dataclasses.replace(SESSIONS, continue_share=0.8)
    sessions = draw_sessions(rng, tastes, np.repeat(np.arange(50), 20), cfg)
    root = sessions.root
    continues = root != np.arange(len(root))
    assert continues.mean() > 0.6
    assert (sessions.user[root] == sessions.user).all()  # a thread never crosses users
    assert (np.diff(sessions.day)[np.diff(sessions.user) == 0] >= 0).all()  # index order is time order
    assert (sessions.thread == sessions.thread[root]).all() and (sessions.group == sessions.group[root]).all()
    follows = np.flatnonzero(continues)
    previous = follows - 1
    assert (sessions.offset[follows] == sessions.offset[previous] + sessions.length[previous]).all()
    assert (sessions.offset[~continues] == 0).all()
    assert (sessions.thread == ALBUM).any()
