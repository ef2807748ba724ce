"""The serving library: ragged tables, the bundle on disk, online candidates, blending and the replay."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from src.recsys.arrays import find_sorted
from src.recsys.serving.blend import OFFLINE, ONLINE, POPULAR, LIST_SOURCES, blend, blend_for_user
from src.recsys.serving.blend_config import BlendConfig
from src.recsys.serving.online_candidates import online_candidates
from src.recsys.serving import bundle_builder
from src.recsys.serving.bundle_builder import TrainHistory, build_bundle, popularity_order, save_bundle
from src.recsys.serving.bundle_format import ARRAYS, MANIFEST, MANIFEST_KEYS
from src.recsys.serving.bundle_reader import BundleError, ServingBundle
from src.recsys.serving.ragged import RaggedTable
from src.recsys.serving.online_replay import listening_sequences, replay, replay_headline, replay_users
from tests.helpers.bundles import COURSE_CASES, tiny_bundle, tiny_frames

NO_LISTENS = np.empty(0, dtype=np.int32)


def codes(sources) -> list[str]:
    return [LIST_SOURCES[code] for code in sources]


# ---------------------------------------------------------------- train history


@pytest.mark.parametrize("chunk", [3, 1 << 24])
def test_train_history_from_a_file_or_in_chunks_equals_the_distinct_pairs(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(bundle_builder, "HISTORY_CHUNK", chunk)
    rng = np.random.default_rng(2)
    train = pd.DataFrame({"user_id": rng.integers(0, 30, 200).astype(np.int32),
                          "track_id": rng.choice(np.array([5, 7, 2**31 - 1, 40], np.int32), 200)})
    train.to_parquet(tmp_path / "train.parquet", row_group_size=23)
    pairs = train.drop_duplicates().sort_values(["user_id", "track_id"])
    listeners = pairs.groupby("track_id")["user_id"].size()
    for history in (TrainHistory.of(train["user_id"].to_numpy(), train["track_id"].to_numpy()),
                    TrainHistory.read(tmp_path / "train.parquet")):
        assert history.history.keys.tolist() == sorted(pairs["user_id"].unique())
        assert history.history.items.tolist() == pairs["track_id"].tolist()
        assert history.track_ids.tolist() == listeners.index.tolist()
        assert history.listeners.tolist() == listeners.tolist() and history.listeners.dtype == np.int32


def test_a_bundle_from_the_train_history_equals_one_from_the_train_frame():
    frames = tiny_frames()
    train = frames["train"]
    from_history = build_bundle(**{**frames, "train": TrainHistory.of(train["user_id"].to_numpy(),
                                                                      train["track_id"].to_numpy())})
    built = build_bundle(**frames)
    for name, array in built.arrays().items():
        assert np.array_equal(from_history.arrays()[name], array), name


# ---------------------------------------------------------------- ragged tables


def test_ranked_rows_come_out_sorted_by_key_then_rank():
    table = RaggedTable.from_ranked(np.array([7, 3, 7, 3]), np.array([70, 31, 71, 30]),
                                    np.array([0.1, 0.2, 0.3, 0.4], np.float32), np.array([2, 2, 1, 1]))
    assert table.keys.tolist() == [3, 7]
    assert table.row(3)[0].tolist() == [30, 31]
    assert table.row(7)[1].tolist() == pytest.approx([0.3, 0.1])
    assert table.row(5)[0].tolist() == [] and 5 not in table and 7 in table


def test_lookups_take_ids_of_any_integer_width():
    """Keys are int32; a query of another width is cast (not the keys), and ids beyond int32 are absent."""
    table = RaggedTable.from_grouped(np.array([1, 4], np.int32), np.array([10, 40]))
    assert table.row_index(4) == 1 and table.row_index(2**40 + 4) == -1 and table.row_index(-(2**40)) == -1
    assert find_sorted(table.keys, np.array([4, 2**32 + 4, 1], np.int64)).tolist() == [1, -1, 0]


def test_a_lookup_does_not_copy_the_key_array():
    """A Python int searched in int32 keys once made numpy copy all keys to int64 (16 MB at 2M users)."""
    import tracemalloc

    keys = np.arange(0, 4_000_000, 2, dtype=np.int32)
    table = RaggedTable(keys, np.arange(len(keys) + 1, dtype=np.int64), np.zeros(len(keys), np.int32))
    tracemalloc.start()
    try:
        table.row(123_456)
        find_sorted(keys, np.array([8, 10], np.int64))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak


def test_ragged_rejects_unsorted_entries_and_broken_offsets():
    with pytest.raises(ValueError, match="sorted by key"):
        RaggedTable.from_grouped(np.array([2, 1]), np.array([1, 2]))
    with pytest.raises(ValueError, match="offsets"):
        RaggedTable(np.array([1], np.int32), np.array([0, 5]), np.array([1, 2], np.int32)).check()


# ---------------------------------------------------------------- the bundle


def test_bundle_history_is_each_users_distinct_tracks_sorted():
    bundle = tiny_bundle()
    assert bundle.history.row(100)[0].tolist() == [1, 2]  # the repeated (100, 1) listen counts once
    assert bundle.history.row(102)[0].tolist() == [1]


def test_popularity_is_the_chart_then_every_other_catalog_track_by_listeners():
    bundle = tiny_bundle()
    assert bundle.popular.tolist()[:3] == [1, 2, 3]
    assert sorted(bundle.popular.tolist()) == list(range(1, 13))  # unheard catalog tracks close the order
    assert bundle.popular_listeners.tolist()[:4] == [2, 1, 1, 0]
    order, listeners = popularity_order(np.array([5]), np.array([1, 2, 5, 9]), np.array([1, 3, 2, 3]))
    assert order.tolist() == [5, 2, 9, 1] and listeners.tolist() == [2, 3, 3, 1]


def test_catalog_names_keep_unicode_and_say_none_when_missing():
    frames = tiny_frames()
    frames["items"].loc[0, "name"] = "Осень ♪"
    bundle = build_bundle(**frames)
    assert bundle.catalog.names(np.array([1, 2, 12, 999])) == ["Осень ♪", "Song 2", None, None]
    assert bundle.catalog.contains(np.array([12, 13])).tolist() == [True, False]


def test_saved_bundle_maps_back_identically_with_a_content_version(tmp_path):
    built = tiny_bundle()
    opened = tiny_bundle(tmp_path / "a")
    for name, array in built.arrays().items():
        assert np.array_equal(opened.arrays()[name], array), name
    assert isinstance(opened.history.items.base, np.memmap)  # mapped, not read
    assert opened.manifest["counts"]["history_listens"] == 4
    assert opened.manifest["shape"] == {"recommendations_per_user": 3, "similar_per_track": 2, "played_next_per_track": 2}
    assert opened.blend == built.blend and opened.manifest["blend"] == built.blend.to_dict()
    assert tiny_bundle(tmp_path / "b").version == opened.version  # deterministic
    frames = tiny_frames()
    frames["recommendations"].loc[0, "score"] = np.float32(0.95)
    (tmp_path / "c").mkdir()  # save_bundle writes into a folder made by atomic_directory
    assert save_bundle(build_bundle(**frames), tmp_path / "c")["version"] != opened.version


def test_the_saved_files_and_manifest_are_what_the_format_table_lists(tmp_path):
    tiny_bundle(tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / MANIFEST).read_text())
    assert list(manifest) == list(MANIFEST_KEYS)
    assert [(name, listed["dtype"]) for name, listed in manifest["files"].items()] == \
        [(spec.name, spec.dtype) for spec in ARRAYS]
    assert sorted(path.stem for path in (tmp_path / "b").glob("*.npy")) == sorted(spec.name for spec in ARRAYS)


def test_opening_a_missing_or_damaged_bundle_says_how_to_fix_it(tmp_path):
    with pytest.raises(BundleError, match="dvc repro serving"):
        ServingBundle.open(tmp_path)
    tiny_bundle(tmp_path / "b")
    np.save(tmp_path / "b" / "offline.items.npy", np.arange(3, dtype=np.int32))
    with pytest.raises(BundleError, match="offline.items.npy: 3 x int32, manifest says 5"):
        ServingBundle.open(tmp_path / "b")


@pytest.mark.parametrize("frame, column, value, message", [
    ("train", "track_id", 77, "data/split/train.parquet: column track_id: 1 track ids are not in the items catalog.*77"),
    ("similar", "similar_track_id", 999, "data/recommendations/similar.parquet: column similar_track_id: .*not in the items catalog.*999"),
    ("recommendations", "track_id", 13, "data/recommendations/recommendations.parquet: column track_id: .*13"),
    ("top_popular", "track_id", 2, "data/recommendations/top_popular.parquet: column track_id: expected unique ids.*first: 2"),
    ("items", "track_id", 2, "data/processed/items.parquet: column track_id: expected unique ids"),
    ("train", "user_id", 2**31, "data/split/train.parquet: column user_id: expected ids in 0..2147483647.*2147483648"),
    ("recommendations", "user_id", -1, "data/recommendations/recommendations.parquet: column user_id: expected ids in 0..2147483647"),
])
def test_build_rejects_inputs_that_would_break_a_served_list(frame, column, value, message):
    """Out-of-catalog tracks would be served without a name; a repeated chart id would be served twice."""
    frames = tiny_frames()
    frames[frame][column] = frames[frame][column].astype(np.int64)
    frames[frame].loc[0, column] = value
    with pytest.raises(ValueError, match=message):
        build_bundle(**frames)


@pytest.mark.parametrize("damage", ["one byte changed", "truncated"])
def test_opening_checks_the_content_hash(tmp_path, damage):
    """A file changed or cut short after the manifest was written (a half copy, a bad pull) is refused."""
    tiny_bundle(tmp_path / "b")
    path = tmp_path / "b" / "catalog.name_bytes.npy"
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        np.save(path, np.frombuffer(bytes(data[-10:]), dtype=np.uint8))  # a valid .npy of the wrong length
        with pytest.raises(BundleError, match="manifest says"):
            ServingBundle.open(tmp_path / "b")
        return
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="content hash .* differs from the manifest's version"):
        ServingBundle.open(tmp_path / "b")
    assert ServingBundle.open(tmp_path / "b", verify=False).catalog.name_bytes[-1] == data[-1]


def test_opening_a_bundle_with_a_broken_manifest_says_so(tmp_path):
    tiny_bundle(tmp_path / "b")
    (tmp_path / "b" / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not a bundle manifest"):
        ServingBundle.open(tmp_path / "b")


# ---------------------------------------------------------------- online candidates and blending


def test_online_candidates_add_up_played_next_and_similar_with_recency_decay():
    bundle = tiny_bundle()
    config = BlendConfig(recent_listens=2, recency_decay=0.5, similar_weight=0.5)
    found = online_candidates(bundle, np.array([2, 1]), config)
    items, scores = found.tracks, found.score
    # latest listen 2 (weight 1): played next 11 -> 1, 10 -> 0.5 (the row's best is 1); similar at half weight:
    # 10 -> +0.4, 11 -> +0.35. Then 1 (weight 0.5): no played-next row, so its catalog continuation (no album;
    # artist 900's most played is 1 itself, skipped), and similar 9 -> 0.225, 10 -> +0.125
    assert items.tolist() == [11, 10, 9]
    assert scores.tolist() == pytest.approx([1.35, 1.025, 0.225])
    assert np.allclose(found.by_source, [[1.0, 0.5, 0.0], [0.0, 0.0, 0.0], [0.35, 0.525, 0.225]])
    only_played_next = online_candidates(bundle, np.array([2, 1]), BlendConfig(recent_listens=1, similar_weight=0.0))
    assert only_played_next.tracks.tolist() == [11, 10]
    assert only_played_next.score.tolist() == pytest.approx([1.0, 0.5])


def test_a_new_release_listen_leads_to_its_album_next_tracks_and_its_artist_most_played():
    """Track 9 has no train listens (no played-next or similar row): album 500 continues with 10, 11 after it,
    and artist 900's most played track is 1."""
    bundle = tiny_bundle()
    found = online_candidates(bundle, np.array([9]), BlendConfig(recent_listens=1))
    items, scores = found.tracks, found.score
    assert items.tolist() == [10, 1, 11] and found.by_source[1].tolist() == pytest.approx([1.0, 0.5, 0.5])  # album next 1/1, artist's first 0.5, album's second 1/2 (lower id first)
    assert scores.tolist() == pytest.approx([1.0, 0.5, 0.5])
    served = blend_for_user(bundle, 999, np.array([9], np.int32), 3, BlendConfig(cold_online_weight=1.0), mode="blended")
    assert served.track_ids.tolist() == [10, 1, 11] and codes(served.sources) == ["online"] * 3
    # the last track of the album continues with the artist only
    assert online_candidates(bundle, np.array([11]), BlendConfig(recent_listens=1)).tracks.tolist() == [1]


def test_catalog_tracks_without_album_artist_or_rows_give_no_online_candidates():
    bundle = tiny_bundle()
    found = online_candidates(bundle, np.array([5, 123456]), BlendConfig(recent_listens=2))
    assert found.tracks.tolist() == [] and found.score.tolist() == [] and found.by_source.shape == (3, 0)


def candidates(tracks, source):
    tracks = np.array(tracks, dtype=np.int32)
    return tracks, np.linspace(1, 0.5, len(tracks)).astype(np.float32), np.full(len(tracks), source, np.int8)


@pytest.mark.parametrize("weight, expected", [
    (0.5, [1, 10, 2, 20, 3, 30]),
    (0.0, [10, 20, 30, 1, 2, 3]),  # no share: the list follows the other one, never dropped
    (1.0, [1, 2, 3, 10, 20, 30]),
])
def test_interleave_shares_slots_by_weight(weight, expected):
    merged = blend(candidates([1, 2, 3], ONLINE), candidates([10, 20, 30], OFFLINE), "interleave", weight)
    assert merged[0].tolist() == expected


def test_a_track_in_both_lists_appears_once_and_rrf_promotes_it():
    online, offline = candidates([5, 1], ONLINE), candidates([10, 20, 5], OFFLINE)
    interleaved = blend(online, offline, "interleave", 0.5)
    assert interleaved[0].tolist() == [5, 10, 1, 20]
    fused = blend(online, offline, "rrf", 0.5)
    assert fused[0].tolist()[0] == 5 and sorted(fused[0].tolist()) == [1, 5, 10, 20]
    assert fused[2][0] == ONLINE  # its online term (rank 1) is larger than its offline one (rank 3)


@pytest.mark.parametrize("values, message", [
    (dict(strategy="mix"), "strategy = 'mix': expected one of interleave, rrf"),
    (dict(recent_listens=0), "recent_listens = 0: expected an integer >= 1"),
    (dict(online_weight=1.5), "online_weight = 1.5"),
    (dict(cold_online_weight=-0.1), "cold_online_weight = -0.1"),
    (dict(recency_decay=0.0), "recency_decay = 0.0"),
    (dict(similar_weight=True), "similar_weight = True"),
])
def test_config_errors_name_the_setting(values, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        BlendConfig(**values)


def test_config_round_trips_and_refuses_unknown_settings():
    config = BlendConfig(recent_listens=2, strategy="rrf", online_weight=0.3)
    assert BlendConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="expected the settings"):
        BlendConfig.from_dict({**config.to_dict(), "extra": 1})


# ---------------------------------------------------------------- blend_for_user: the course's three cases


@pytest.mark.parametrize("case", COURSE_CASES.values(), ids=COURSE_CASES.keys())
def test_the_course_cases(case):
    """The same cases go through HTTP in test_service_api.py; online listens are passed latest first."""
    result = blend_for_user(tiny_bundle(), case.user_id, np.array(case.listens[::-1], np.int32), case.k, BlendConfig())
    assert result.track_ids.tolist() == case.tracks and codes(result.sources) == case.sources
    assert result.cold == case.cold


def test_online_listens_change_the_list_of_a_user_with_both():
    case = COURSE_CASES["offline and online"]
    without = blend_for_user(tiny_bundle(), case.user_id, NO_LISTENS, case.k, BlendConfig())
    assert without.track_ids.tolist() == [7, 8, 1, 2] != case.tracks



def test_cold_user_gets_top_popular_minus_online_listens():
    result = blend_for_user(tiny_bundle(), 999, np.array([1]), 3, BlendConfig(), mode="offline")
    assert result.cold and result.track_ids.tolist() == [2, 3, 4] and codes(result.sources) == ["popular"] * 3


def test_cold_users_blend_with_their_own_weight():
    bundle = tiny_bundle()
    warm_only = BlendConfig(online_weight=0.5, cold_online_weight=0.0)
    assert blend_for_user(bundle, 999, np.array([1]), 3, warm_only).track_ids.tolist() == [2, 3, 4]
    cold_too = BlendConfig(online_weight=0.0, cold_online_weight=0.5)
    result = blend_for_user(bundle, 999, np.array([1]), 3, cold_too)  # similar to 1: 9, 10
    assert result.track_ids.tolist() == [9, 2, 10] and codes(result.sources) == ["online", "popular", "online"]


@pytest.mark.parametrize("mode", ["blended", "offline", "online"])
@pytest.mark.parametrize("strategy", ["interleave", "rrf"])
def test_every_list_has_k_distinct_unheard_tracks(mode, strategy):
    """Random users, online listens and k: exactly min(k, unheard catalog) items, no repeats, nothing heard."""
    bundle, rng = tiny_bundle(), np.random.default_rng(0)
    catalog = bundle.catalog.track_ids
    for _ in range(200):
        user = int(rng.choice([100, 101, 102, 5]))
        listens = rng.choice(catalog, size=rng.integers(0, 6)).astype(np.int32)
        k = int(rng.integers(1, 15))
        config = BlendConfig(recent_listens=int(rng.integers(1, 4)), strategy=strategy,
                             online_weight=float(rng.choice([0.0, 0.3, 0.5, 1.0])),
                             cold_online_weight=float(rng.choice([0.0, 0.5, 1.0])))
        result = blend_for_user(bundle, user, listens, k, config, mode)
        heard = set(bundle.history.row(user)[0].tolist()) | set(listens.tolist())
        tracks = result.track_ids.tolist()
        assert len(tracks) == min(k, len(catalog) - len(heard))
        assert len(set(tracks)) == len(tracks)
        assert not heard & set(tracks)
        assert set(result.sources.tolist()) <= {OFFLINE, ONLINE, POPULAR}
        assert len(result.scores) == len(tracks)


def test_recommend_rejects_bad_k_and_mode():
    with pytest.raises(ValueError, match="k must be"):
        blend_for_user(tiny_bundle(), 100, NO_LISTENS, 0, BlendConfig())
    with pytest.raises(ValueError, match="mode"):
        blend_for_user(tiny_bundle(), 100, NO_LISTENS, 3, BlendConfig(), mode="both")


# ---------------------------------------------------------------- replay


def replay_test() -> pd.DataFrame:
    """User 100 listens to 9 and then 10, 11 in the test period; 101 listens to 7 then 2; 102 listens once."""
    return pd.DataFrame({
        "user_id": np.array([100, 100, 100, 101, 101, 102], np.int32),
        "track_id": np.array([10, 9, 11, 2, 7, 5], np.int32),
        "track_seq": np.array([4, 3, 5, 3, 2, 3], np.int16),
        "started_at": pd.to_datetime(["2022-12-20", "2022-12-20", "2022-12-21", "2022-12-22", "2022-12-20",
                                      "2022-12-20"]),
    })


def test_listening_sequences_follow_day_then_sequence_number():
    sequences = listening_sequences(replay_test())
    assert sequences.row(100)[0].tolist() == [9, 10, 11]
    assert sequences.row(101)[0].tolist() == [7, 2]


def test_replay_users_need_more_listens_than_revealed_and_are_sampled_reproducibly():
    bundle, sequences = tiny_bundle(), listening_sequences(replay_test())
    assert replay_users(sequences, bundle, 1, 10, 0).tolist() == [100, 101]
    assert replay_users(sequences, bundle, 2, 10, 0).tolist() == [100]
    assert len(replay_users(sequences, bundle, 1, 1, 0)) == 1
    assert replay_users(sequences, bundle, 1, 1, 0).tolist() == replay_users(sequences, bundle, 1, 1, 0).tolist()


def test_replay_scores_the_served_lists_on_the_unrevealed_listens():
    """User 100 reveals 9 (similar: nothing), 101 reveals 7; truth is what follows."""
    bundle, sequences = tiny_bundle(), listening_sequences(replay_test())
    frames = tiny_frames()
    # make the online route perfect for user 100: the similar tracks of 9 are exactly 10 and 11
    frames["similar"] = pd.concat([frames["similar"], pd.DataFrame({
        "track_id": np.array([9, 9], np.int32), "similar_track_id": np.array([10, 11], np.int32),
        "score": np.array([0.9, 0.8], np.float32), "rank": np.array([1, 2], np.int16)})], ignore_index=True)
    bundle = build_bundle(**frames)
    scores = replay(bundle, sequences, np.array([100], np.int32), 1, 2, BlendConfig())
    assert scores["online"] == pytest.approx({"ndcg_at_2": 1.0, "recall_at_2": 1.0, "precision_at_2": 1.0})
    assert scores["offline"]["recall_at_2"] == 0.0  # 4, 5: neither was listened to
    assert scores["blended"]["precision_at_2"] == 0.5  # online 10, offline 4


def test_replay_headline_is_ndcg_per_m_and_mode_rounded():
    scores = {"ndcg_at_10": 0.123456789, "recall_at_10": 0.5, "precision_at_10": 0.25}
    report = {"reveal_3": {"users": 7, "blended": scores, "offline": scores, "online": {**scores, "ndcg_at_10": 0.1}},
              "cold_reveal_3": {"users": 2, "blended": scores, "offline": scores, "online": scores}}
    report = {**report, "reveal_1": {"users": 9, "blended": scores, "offline": scores, "online": scores}}
    declared = replay_headline(report, 10, 3)
    assert list(declared) == ["m3", "cold_m3"]
    assert declared["m3"] == {"blended.ndcg@10": 0.12346, "offline.ndcg@10": 0.12346, "online.ndcg@10": 0.1}


def test_the_blend_is_part_of_the_bundle_version(tmp_path):
    """The served settings travel inside the bundle: changing them changes the version, editing them is refused."""
    built = tiny_bundle()
    first = save_bundle(built, _empty(tmp_path / "a"))
    second = save_bundle(built.with_blend(BlendConfig(online_weight=0.2)), _empty(tmp_path / "b"))
    assert first["version"] != second["version"]
    assert ServingBundle.open(tmp_path / "b").blend.online_weight == 0.2
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    manifest["blend"]["online_weight"] = 0.9
    (tmp_path / "a" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="content hash"):
        ServingBundle.open(tmp_path / "a")
    manifest["blend"]["online_weight"] = 7
    (tmp_path / "a" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="blend settings: online_weight = 7"):
        ServingBundle.open(tmp_path / "a")


def _empty(folder):
    folder.mkdir(parents=True)
    return folder
