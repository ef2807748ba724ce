"""Building the serving bundle from the pipeline's tables (pandas, pyarrow): checks, derived tables, files.

Built once per pipeline run by the `serving` stage from the final recommendations, the similar-tracks
and played-next tables, the popularity chart, the train history and the catalog (with each track's
album and artist); the stage then adds the blend settings and the re-ranker it chose and saves it. The
files follow ``bundle_format.py``; the service opens them with ``bundle_reader.py``, without pandas.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import paths, sequences
from ..arrays import encode, find_sorted, positions_in_groups, sort_in_place_distinct, unique_sorted
from ..io import DataValidationError
from .blend_config import BlendConfig
from .bundle_format import ARRAYS, FORMAT, MANIFEST, array_prefix, content_digest, settings_bytes, version_of
from .bundle_reader import ServingBundle, TrackCatalog
from .ragged import RaggedTable
from .reranker import RERANKER_FEATURES
from .trees import TreeEnsemble

ARTIST_TOP_TRACKS = 10  # an artist's most played tracks kept for a listen of a track nobody played in train
_TRACK_BITS = 31  # history pair key: user_id << 31 | track_id (ids are non-negative int32)
_MAX_ID = 2**31 - 1
HISTORY_CHUNK = 1 << 24  # keys split back into users and tracks at once: bounds the int64 temporaries
# the inputs, as named in error messages (the serving stage reads these files)
RECOMMENDATIONS, SIMILAR, TOP_POPULAR = (str(paths.FINAL), str(paths.SIMILAR), str(paths.TOP_POPULAR))
PLAYED_NEXT = str(paths.PLAYED_NEXT)
TRAIN, ITEMS = str(paths.TRAIN), str(paths.ITEMS)


def build_bundle(recommendations: pd.DataFrame, similar: pd.DataFrame, played_next: pd.DataFrame,
                 top_popular: pd.DataFrame, train: "pd.DataFrame | TrainHistory", items: pd.DataFrame) -> ServingBundle:
    """Turn the pipeline's long tables into the bundle's arrays (vectorised; one sort of the history).

    The inputs are checked for what every served list relies on: ids that fit int32, unique catalog and
    chart ids, and every recommended, similar, charted or listened track in the catalog (so it has a name
    and can never be served twice under two ids). ``train``: the train frame, or its ``TrainHistory``
    (what the stage passes, read from the file without holding the 207M listens).
    """
    for file, frame, columns in ((RECOMMENDATIONS, recommendations, ("user_id", "track_id")),
                                 (SIMILAR, similar, ("track_id", "similar_track_id")),
                                 (PLAYED_NEXT, played_next, ("track_id", "next_track_id")),
                                 (TOP_POPULAR, top_popular, ("track_id",)), (ITEMS, items, ("track_id",))):
        for column in columns:
            _check_ids(file, column, frame[column].to_numpy())
    for file, frame in ((ITEMS, items), (TOP_POPULAR, top_popular)):
        _check_unique(file, "track_id", frame["track_id"].to_numpy())
    catalog = catalog_from_items(items["track_id"].to_numpy(), items["name"],
                                 first_ids(ITEMS, "albums", items["albums"]),
                                 first_ids(ITEMS, "artists", items["artists"]))
    for file, frame, column in ((RECOMMENDATIONS, recommendations, "track_id"),
                                (SIMILAR, similar, "track_id"), (SIMILAR, similar, "similar_track_id"),
                                (PLAYED_NEXT, played_next, "track_id"), (PLAYED_NEXT, played_next, "next_track_id"),
                                (TOP_POPULAR, top_popular, "track_id")):
        _check_in_catalog(file, column, frame[column].to_numpy(), catalog)
    if not isinstance(train, TrainHistory):
        train = TrainHistory.of(train["user_id"].to_numpy(), train["track_id"].to_numpy())
    history, listened, listeners = train.history, train.track_ids, train.listeners
    _check_in_catalog(TRAIN, "track_id", listened, catalog)  # the distinct tracks: 1M lookups, not 184M
    catalog_listeners = _aligned(listened, listeners, catalog.track_ids)
    catalog = dataclasses.replace(catalog, listeners=catalog_listeners.astype(np.int32))
    popular, popular_listeners = popularity_order(top_popular["track_id"].to_numpy(), catalog.track_ids,
                                                  catalog_listeners)
    return ServingBundle(
        offline=RaggedTable.from_ranked(recommendations["user_id"].to_numpy(), recommendations["track_id"].to_numpy(),
                                        recommendations["score"].to_numpy(), recommendations["rank"].to_numpy()),
        similar=RaggedTable.from_ranked(similar["track_id"].to_numpy(), similar["similar_track_id"].to_numpy(),
                                        similar["score"].to_numpy(), similar["rank"].to_numpy()),
        history=history,
        played_next=RaggedTable.from_ranked(played_next["track_id"].to_numpy(), played_next["next_track_id"].to_numpy(),
                                            played_next["score"].to_numpy(), played_next["rank"].to_numpy()),
        album_tracks=album_tracks(catalog),
        artist_tracks=artist_tracks(catalog, catalog_listeners),
        popular=popular,
        popular_listeners=popular_listeners,
        catalog=catalog,
        blend=BlendConfig(),
        reranker=TreeEnsemble.empty(),
        manifest={},
    )


def save_bundle(bundle: ServingBundle, folder: Path) -> dict[str, Any]:
    """Write the arrays and the manifest into ``folder`` (an empty folder, e.g. from ``atomic_directory``)."""
    digest = content_digest()
    files = {}
    arrays = bundle.arrays()
    for spec in ARRAYS:
        array = np.ascontiguousarray(arrays[spec.name])
        if str(array.dtype) != spec.dtype:
            raise ValueError(f"bundle array {spec.name}: {array.dtype}, the format says {spec.dtype}")
        np.save(folder / f"{spec.name}.npy", array)
        digest.update(array_prefix(spec.name, array.dtype))
        digest.update(array)  # the contiguous buffer itself: tobytes would copy it (0.8 GB for the history)
        files[spec.name] = {"dtype": str(array.dtype), "length": int(len(array))}
    blend, features = bundle.blend.to_dict(), list(RERANKER_FEATURES)
    digest.update(settings_bytes(blend, features))
    manifest = {
        "format": FORMAT,
        "version": version_of(digest),
        "blend": blend,
        "reranker_features": features,
        "counts": {
            "users_with_recommendations": len(bundle.offline),
            "recommendations": bundle.offline.n_entries,
            "tracks_with_similar": len(bundle.similar),
            "similar_pairs": bundle.similar.n_entries,
            "tracks_with_played_next": len(bundle.played_next),
            "played_next_pairs": bundle.played_next.n_entries,
            "reranker_trees": len(bundle.reranker),
            "users_with_history": len(bundle.history),
            "history_listens": bundle.history.n_entries,
            "popular_tracks": int(len(bundle.popular)),
            "catalog_tracks": int(len(bundle.catalog.track_ids)),
        },
        "shape": {  # what the upstream params (rank.n, similar.n, popular.n) made of the tables
            "recommendations_per_user": _longest_row(bundle.offline),
            "similar_per_track": _longest_row(bundle.similar),
            "played_next_per_track": _longest_row(bundle.played_next),
        },
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def catalog_from_items(track_ids: np.ndarray, names: pd.Series, albums: np.ndarray,
                       artists: np.ndarray) -> TrackCatalog:
    """The catalog sorted by track id; ``albums``/``artists``: each track's first album and artist id (-1: none),
    aligned with ``track_ids``; listeners are 0 until ``build_bundle`` counts them."""
    order = np.argsort(track_ids, kind="stable")
    encoded = pa.array(names.to_numpy(dtype=object)[order], type=pa.large_string()).fill_null("")
    _, offsets, data = encoded.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)[encoded.offset: encoded.offset + len(encoded) + 1]
    start = int(offsets[0])
    name_bytes = np.frombuffer(data, dtype=np.uint8)[start: int(offsets[-1])] if data is not None else \
        np.empty(0, dtype=np.uint8)
    return TrackCatalog(np.asarray(track_ids, dtype=np.int32)[order], (offsets - start).astype(np.int64),
                        name_bytes.copy(), np.asarray(albums, dtype=np.int32)[order],
                        np.asarray(artists, dtype=np.int32)[order], np.zeros(len(order), dtype=np.int32))


@dataclasses.dataclass(frozen=True)
class TrainHistory:
    """Each user's distinct listened tracks (sorted), and every listened track with its distinct listeners.

    One sort of int64 ``user << 31 | track`` keys serves both: the unique keys are the history rows in order,
    and counting their track halves counts distinct listeners. The keys are sorted in place and split back
    a chunk at a time, so at 207M listens the peak is the keys (8 bytes a listen) plus the result (8 bytes a
    distinct pair), not the several int64 copies that ``np.unique`` and whole-array shifts would make.
    """

    history: RaggedTable
    track_ids: np.ndarray  # int32, sorted: every track listened to in train
    listeners: np.ndarray  # int32, aligned with track_ids

    @classmethod
    def of(cls, user_ids: np.ndarray, track_ids: np.ndarray) -> "TrainHistory":
        _check_ids(TRAIN, "user_id", user_ids)
        _check_ids(TRAIN, "track_id", track_ids)
        keys = np.empty(len(user_ids), dtype=np.int64)
        for begin in range(0, len(keys), HISTORY_CHUNK):
            end = begin + HISTORY_CHUNK
            keys[begin:end] = _pair_keys(user_ids[begin:end], track_ids[begin:end])
        return cls.from_keys(keys)

    @classmethod
    def read(cls, path: Path | str) -> "TrainHistory":
        """From a train parquet file, a row group at a time (only the keys are held, never the columns)."""
        source = pq.ParquetFile(path)
        keys = np.empty(source.metadata.num_rows, dtype=np.int64)
        begin = 0
        for group in range(source.num_row_groups):
            table = source.read_row_group(group, columns=["user_id", "track_id"])
            user_ids, track_ids = (table.column(name).to_numpy() for name in ("user_id", "track_id"))
            _check_ids(TRAIN, "user_id", user_ids)
            _check_ids(TRAIN, "track_id", track_ids)
            keys[begin:begin + len(user_ids)] = _pair_keys(user_ids, track_ids)
            begin += len(user_ids)
            del table, user_ids, track_ids
        return cls.from_keys(keys)

    @classmethod
    def from_keys(cls, keys: np.ndarray) -> "TrainHistory":
        """From ``user << 31 | track`` keys (sorted in place: the caller's array is consumed)."""
        distinct = sort_in_place_distinct(keys)
        size = int(np.count_nonzero(distinct))
        users, tracks = np.empty(size, dtype=np.int32), np.empty(size, dtype=np.int32)
        done = 0
        for begin in range(0, len(keys), HISTORY_CHUNK):
            part = keys[begin:begin + HISTORY_CHUNK][distinct[begin:begin + HISTORY_CHUNK]]
            users[done:done + len(part)] = part >> _TRACK_BITS
            tracks[done:done + len(part)] = part & ((1 << _TRACK_BITS) - 1)
            done += len(part)
        del keys, distinct
        track_index = unique_sorted(tracks)
        listeners = np.zeros(len(track_index), dtype=np.int64)
        for begin in range(0, len(tracks), HISTORY_CHUNK):
            listeners += np.bincount(encode(tracks[begin:begin + HISTORY_CHUNK], track_index),
                                     minlength=len(track_index))
        return cls(RaggedTable.from_grouped(users, tracks), track_index, listeners.astype(np.int32))


def _pair_keys(user_ids: np.ndarray, track_ids: np.ndarray) -> np.ndarray:
    keys = user_ids.astype(np.int64)
    keys <<= _TRACK_BITS
    keys |= track_ids
    return keys


def first_ids(file: str, column: str, lists: pd.Series) -> np.ndarray:
    """The first id of each list (-1 for an empty or missing list) as int32: a track's album or artist.

    Every id in the lists is checked to fit int32, as for the other id columns.
    """
    array = pa.array(lists, type=pa.list_(pa.int64()))
    _check_ids(file, column, pc.list_flatten(array).to_numpy())
    return sequences.first_ids(array).astype(np.int32)


def album_tracks(catalog: TrackCatalog) -> RaggedTable:
    """Album -> its catalog tracks in album order: ascending track id (the files carry no track numbers)."""
    has_album = np.flatnonzero(catalog.albums >= 0)
    order = has_album[np.lexsort((catalog.track_ids[has_album], catalog.albums[has_album]))]
    return RaggedTable.from_grouped(catalog.albums[order], catalog.track_ids[order])


def artist_tracks(catalog: TrackCatalog, listeners: np.ndarray) -> RaggedTable:
    """Artist -> their ``ARTIST_TOP_TRACKS`` most played tracks (distinct train listeners, then lower id)."""
    played = np.flatnonzero((catalog.artists >= 0) & (listeners > 0))
    order = played[np.lexsort((catalog.track_ids[played], -listeners[played].astype(np.int64), catalog.artists[played]))]
    order = order[positions_in_groups(catalog.artists[order]) < ARTIST_TOP_TRACKS]
    return RaggedTable.from_grouped(catalog.artists[order], catalog.track_ids[order], listeners[order].astype(np.float32))


def popularity_order(head: np.ndarray, track_ids: np.ndarray, listeners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``head`` (the popular stage's chart) followed by every other track by listeners, then lower id.

    The tail (down to catalog tracks nobody listened to) is what lets every answer reach ``k`` items
    even for a user who heard the whole chart.
    """
    head = np.asarray(head, dtype=np.int32)
    rest = ~np.isin(track_ids, head)
    tail_order = np.lexsort((track_ids[rest], -listeners[rest].astype(np.int64)))
    order = np.concatenate([head, track_ids[rest][tail_order]]).astype(np.int32)
    position = encode(order, track_ids)
    counts = np.where(position >= 0, listeners[np.maximum(position, 0)], 0).astype(np.int32)
    return order, counts


def _check_ids(file: str, column: str, ids: np.ndarray) -> None:
    if len(ids) and (ids.min() < 0 or ids.max() > _MAX_ID):
        bad = ids[(ids < 0) | (ids > _MAX_ID)][0]
        raise DataValidationError(f"{file}: column {column}: expected ids in 0..{_MAX_ID} (int32), found {int(bad)}")


def _check_unique(file: str, column: str, ids: np.ndarray) -> None:
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataValidationError(f"{file}: column {column}: expected unique ids, found {int((counts > 1).sum())} "
                                  f"repeated (first: {int(values[counts > 1][0])})")


def _check_in_catalog(file: str, column: str, ids: np.ndarray, catalog: TrackCatalog) -> None:
    unknown = ~catalog.contains(ids)
    if unknown.any():
        raise DataValidationError(f"{file}: column {column}: {int(unknown.sum())} track ids are not in the items "
                                  f"catalog ({ITEMS}); first: {int(ids[unknown][0])}")


def _aligned(keys: np.ndarray, values: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """``values`` (keyed by ``keys``, a subset of ``sorted_ids``) spread over ``sorted_ids``, 0 elsewhere."""
    aligned = np.zeros(len(sorted_ids), dtype=values.dtype)
    aligned[find_sorted(sorted_ids, keys)] = values
    return aligned


def _longest_row(table: RaggedTable) -> int:
    return int(np.diff(table.offsets).max(initial=0))
