"""The serving bundle: everything the service answers from, as memory-mappable arrays and a manifest.

Built once per pipeline run by the `serving` stage from the final recommendations, the similar-tracks
and played-next tables, the popularity chart, the train history and the catalog (with each track's
album and artist); the manifest carries the blend settings the stage chose for this data version. Opening it maps the files, so only the
pages a request touches become resident. Opening also checks the content hash (the version) by streaming
the files through ``read``, not through the map: ~1 s at full size (1.37M users), and the process's RSS
does not grow by the bundle; a bundle copied, pulled or rebuilt halfway is refused instead of served.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import paths, sequences
from ..arrays import encode, find_sorted, positions_in_groups, unique_sorted
from ..io import DataValidationError
from .ragged import PARTS, RaggedTable
from .blend_config import BlendConfig
from .trees import TreeEnsemble

FORMAT = 2
MANIFEST = "manifest.json"
_CHUNK = 8 << 20  # bytes read per hash update when checking a bundle's content
TABLES = ("offline", "similar", "history", "played_next", "album_tracks", "artist_tracks")
ARTIST_TOP_TRACKS = 10  # an artist's most played tracks kept for a listen of a track nobody played in train
_TRACK_BITS = 31  # history pair key: user_id << 31 | track_id (ids are non-negative int32)
_MAX_ID = 2**31 - 1
# the inputs, as named in error messages (the serving stage reads these files)
RECOMMENDATIONS, SIMILAR, TOP_POPULAR = (str(paths.FINAL), str(paths.SIMILAR), str(paths.TOP_POPULAR))
PLAYED_NEXT = str(paths.PLAYED_NEXT)
TRAIN, ITEMS = str(paths.TRAIN), str(paths.ITEMS)


class BundleError(RuntimeError):
    """The bundle folder is missing, incomplete or of another format; the message says which and how to fix it."""


@dataclass(frozen=True)
class TrackCatalog:
    """Every known track id (sorted) with its name as UTF-8 bytes, first album and first artist.

    Writes of other ids are rejected; the album and artist (-1: none) lead a listen of a track nobody
    played in train to its album's next tracks and its artist's most played ones.
    """

    track_ids: np.ndarray  # int32, sorted unique
    name_offsets: np.ndarray  # int64, len(track_ids) + 1
    name_bytes: np.ndarray  # uint8
    albums: np.ndarray  # int32 aligned with track_ids, -1 when the track lists no album
    artists: np.ndarray  # int32 aligned with track_ids, -1 when the track lists no artist
    listeners: np.ndarray  # int32 aligned with track_ids: distinct train listeners (0 for the rest)

    @classmethod
    def from_items(cls, track_ids: np.ndarray, names: pd.Series, albums: np.ndarray, artists: np.ndarray) -> "TrackCatalog":
        """``albums``/``artists``: each track's first album and artist id (-1: none), aligned with ``track_ids``;
        listeners are set by ``with_listeners``."""
        order = np.argsort(track_ids, kind="stable")
        encoded = pa.array(names.to_numpy(dtype=object)[order], type=pa.large_string()).fill_null("")
        _, offsets, data = encoded.buffers()
        offsets = np.frombuffer(offsets, dtype=np.int64)[encoded.offset: encoded.offset + len(encoded) + 1]
        start = int(offsets[0])
        name_bytes = np.frombuffer(data, dtype=np.uint8)[start: int(offsets[-1])] if data is not None else \
            np.empty(0, dtype=np.uint8)
        return cls(np.asarray(track_ids, dtype=np.int32)[order], (offsets - start).astype(np.int64), name_bytes.copy(),
                   np.asarray(albums, dtype=np.int32)[order], np.asarray(artists, dtype=np.int32)[order],
                   np.zeros(len(order), dtype=np.int32))

    def with_listeners(self, listeners: np.ndarray) -> "TrackCatalog":
        return dataclasses.replace(self, listeners=np.asarray(listeners, dtype=np.int32))

    def codes(self, track_ids: np.ndarray) -> np.ndarray:
        """Position of each track in ``track_ids``, -1 when unknown (binary search: requests ask for a few ids)."""
        return find_sorted(self.track_ids, track_ids)

    def contains(self, track_ids: np.ndarray) -> np.ndarray:
        return self.codes(track_ids) >= 0

    def names(self, track_ids: np.ndarray) -> list[str | None]:
        """Name of each track (None when the catalog has no name for it or does not know it)."""
        codes = self.codes(track_ids)
        names: list[str | None] = []
        for code in codes.tolist():
            if code < 0:
                names.append(None)
                continue
            begin, end = int(self.name_offsets[code]), int(self.name_offsets[code + 1])
            names.append(bytes(self.name_bytes[begin:end]).decode("utf-8") if end > begin else None)
        return names


@dataclass(frozen=True)
class ServingBundle:
    """Offline lists, online candidate tables, listened tracks, the popularity order and the chosen blend."""

    offline: RaggedTable  # user -> final recommendations, best first, ranker scores
    similar: RaggedTable  # track -> similar tracks, best first, cosine similarity
    history: RaggedTable  # user -> tracks listened to in train, sorted by track id (membership by binary search)
    played_next: RaggedTable  # track -> tracks played after it within a day, best first (played_next stage)
    album_tracks: RaggedTable  # album -> its catalog tracks in album order (ascending track id)
    artist_tracks: RaggedTable  # artist -> its most played tracks, scores = distinct train listeners
    popular: np.ndarray  # int32: every catalog track, most distinct train listeners first (head = top_popular.parquet)
    popular_listeners: np.ndarray  # int32 aligned with popular
    catalog: TrackCatalog
    blend: BlendConfig  # chosen by the blend search on held-out users (`serving` stage), the default until then
    reranker: TreeEnsemble  # the learned re-ranker (blend strategy "learned"), empty until the search fits one
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return self.manifest["version"]

    def with_blend(self, blend: BlendConfig, reranker: TreeEnsemble | None = None) -> "ServingBundle":
        return dataclasses.replace(self, blend=blend, reranker=self.reranker if reranker is None else reranker)

    @classmethod
    def build(cls, recommendations: pd.DataFrame, similar: pd.DataFrame, played_next: pd.DataFrame,
              top_popular: pd.DataFrame, train: pd.DataFrame, items: pd.DataFrame) -> "ServingBundle":
        """Turn the pipeline's long tables into the bundle's arrays (vectorised; one sort of the history).

        The inputs are checked for what every served list relies on: ids that fit int32, unique catalog and
        chart ids, and every recommended, similar, charted or listened track in the catalog (so it has a name
        and can never be served twice under two ids).
        """
        for file, frame, columns in ((RECOMMENDATIONS, recommendations, ("user_id", "track_id")),
                                     (SIMILAR, similar, ("track_id", "similar_track_id")),
                                     (PLAYED_NEXT, played_next, ("track_id", "next_track_id")),
                                     (TOP_POPULAR, top_popular, ("track_id",)), (ITEMS, items, ("track_id",))):
            for column in columns:
                _check_ids(file, column, frame[column].to_numpy())
        for file, frame in ((ITEMS, items), (TOP_POPULAR, top_popular)):
            _check_unique(file, "track_id", frame["track_id"].to_numpy())
        catalog = TrackCatalog.from_items(items["track_id"].to_numpy(), items["name"],
                                          first_ids(ITEMS, "albums", items["albums"]),
                                          first_ids(ITEMS, "artists", items["artists"]))
        for file, frame, column in ((RECOMMENDATIONS, recommendations, "track_id"),
                                    (SIMILAR, similar, "track_id"), (SIMILAR, similar, "similar_track_id"),
                                    (PLAYED_NEXT, played_next, "track_id"), (PLAYED_NEXT, played_next, "next_track_id"),
                                    (TOP_POPULAR, top_popular, "track_id")):
            _check_in_catalog(file, column, frame[column].to_numpy(), catalog)
        history, (listened, listeners) = listened_tracks(train["user_id"].to_numpy(), train["track_id"].to_numpy())
        _check_in_catalog(TRAIN, "track_id", listened, catalog)  # the distinct tracks: 1M lookups, not 184M
        catalog_listeners = _aligned(listened, listeners, catalog.track_ids)
        catalog = catalog.with_listeners(catalog_listeners)
        popular, popular_listeners = popularity_order(top_popular["track_id"].to_numpy(), catalog.track_ids,
                                                      catalog_listeners)
        return cls(
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

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the bundle under its file name (without ``.npy``), in a fixed order."""
        named: dict[str, np.ndarray] = {}
        for table in TABLES:
            ragged: RaggedTable = getattr(self, table)
            for part in PARTS:
                if getattr(ragged, part) is not None:
                    named[f"{table}.{part}"] = getattr(ragged, part)
        named["popular.items"] = self.popular
        named["popular.listeners"] = self.popular_listeners
        named["catalog.track_ids"] = self.catalog.track_ids
        named["catalog.name_offsets"] = self.catalog.name_offsets
        named["catalog.name_bytes"] = self.catalog.name_bytes
        named["catalog.albums"] = self.catalog.albums
        named["catalog.artists"] = self.catalog.artists
        named["catalog.listeners"] = self.catalog.listeners
        named["reranker.features"] = self.reranker.features
        named["reranker.borders"] = self.reranker.borders
        named["reranker.leaves"] = self.reranker.leaves
        return named

    def save(self, folder: Path) -> dict[str, Any]:
        """Write the arrays and the manifest into ``folder`` (an empty folder, e.g. from ``atomic_directory``)."""
        digest = hashlib.sha256()
        files = {}
        for name, array in self.arrays().items():
            array = np.ascontiguousarray(array)
            np.save(folder / f"{name}.npy", array)
            digest.update(_digest_prefix(name, array.dtype))
            digest.update(array.tobytes())
            files[name] = {"dtype": str(array.dtype), "length": int(len(array))}
        blend = self.blend.to_dict()
        digest.update(_blend_bytes(blend))
        manifest = {
            "format": FORMAT,
            "version": _version(digest),
            "blend": blend,
            "counts": {
                "users_with_recommendations": len(self.offline),
                "recommendations": self.offline.n_entries,
                "tracks_with_similar": len(self.similar),
                "similar_pairs": self.similar.n_entries,
                "tracks_with_played_next": len(self.played_next),
                "played_next_pairs": self.played_next.n_entries,
                "reranker_trees": len(self.reranker),
                "users_with_history": len(self.history),
                "history_listens": self.history.n_entries,
                "popular_tracks": int(len(self.popular)),
                "catalog_tracks": int(len(self.catalog.track_ids)),
            },
            "shape": {  # what the upstream params (rank.n, similar.n, popular.n) made of the tables
                "recommendations_per_user": _longest_row(self.offline),
                "similar_per_track": _longest_row(self.similar),
                "played_next_per_track": _longest_row(self.played_next),
            },
            "files": files,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return manifest

    @classmethod
    def open(cls, folder: Path | str, mmap: bool = True, verify: bool = True) -> "ServingBundle":
        """Map a saved bundle; a missing or inconsistent folder raises ``BundleError`` naming the problem.

        ``verify`` recomputes the content hash and compares it with the manifest's version (see the module doc).
        """
        folder = Path(folder)
        manifest_path = folder / MANIFEST
        if not manifest_path.exists():
            raise BundleError(f"{manifest_path} not found: build the bundle with `dvc repro serving`")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            manifest["files"], manifest["version"], manifest["blend"]
        except (ValueError, KeyError, TypeError) as error:
            raise BundleError(f"{manifest_path}: not a bundle manifest ({error!r}); rebuild it with "
                              "`dvc repro serving`") from error
        if manifest.get("format") != FORMAT:
            raise BundleError(f"{manifest_path}: format {manifest.get('format')!r}, this code reads format {FORMAT}; "
                              "rebuild it with `dvc repro serving`")
        arrays = {}
        for name, spec in manifest["files"].items():
            path = folder / f"{name}.npy"
            try:
                # a plain ndarray view of the map: slicing an np.memmap costs a Python-level hook per slice
                array = np.asarray(np.load(path, mmap_mode="r" if mmap else None))
            except (OSError, ValueError) as error:
                raise BundleError(f"{path}: cannot be read ({error}); rebuild it with `dvc repro serving`") from error
            if len(array) != spec["length"] or str(array.dtype) != spec["dtype"]:
                raise BundleError(f"{path}: {len(array)} x {array.dtype}, manifest says {spec['length']} x {spec['dtype']}")
            arrays[name] = array
        try:
            blend = BlendConfig.from_dict(manifest["blend"])
        except (ValueError, TypeError) as error:
            raise BundleError(f"{manifest_path}: blend settings: {error}; rebuild it with `dvc repro serving`") from error
        if verify:
            check_content(folder, manifest["version"], arrays, manifest["blend"])
        reranker = TreeEnsemble(*(arrays[f"reranker.{part}"] for part in ("features", "borders", "leaves")))
        if "learned" in (blend.strategy, blend.cold_strategy) and not len(reranker):
            raise BundleError(f"{manifest_path}: the blend uses the learned re-ranker but the bundle has none; "
                              "rebuild it with `dvc repro serving`")
        tables = {table: RaggedTable(*(arrays.get(f"{table}.{part}") for part in PARTS)) for table in TABLES}
        for name, table in tables.items():
            try:
                table.check()
            except ValueError as error:
                raise BundleError(f"{folder}: table {name}: {error}; rebuild it with `dvc repro serving`") from error
        return cls(
            **tables,
            popular=arrays["popular.items"],
            popular_listeners=arrays["popular.listeners"],
            catalog=TrackCatalog(*(arrays[f"catalog.{part}"] for part in
                                   ("track_ids", "name_offsets", "name_bytes", "albums", "artists", "listeners"))),
            blend=blend,
            reranker=reranker,
            manifest=manifest,
        )


def check_content(folder: Path, version: str, arrays: dict[str, np.ndarray], blend: dict[str, Any]) -> None:
    """Raise ``BundleError`` unless the files' data and the blend settings hash to ``version`` (what ``save`` wrote).

    Each ``.npy`` file ends with its array's bytes, so its last ``nbytes`` bytes are hashed with plain
    reads: the page cache holds them, the process does not.
    """
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK)
    for name, array in arrays.items():
        path = folder / f"{name}.npy"
        digest.update(_digest_prefix(name, array.dtype))
        try:
            with path.open("rb", buffering=0) as file:
                left = array.nbytes
                if left:
                    file.seek(-left, 2)
                while left:
                    read = file.readinto(memoryview(buffer)[:min(left, _CHUNK)])
                    if not read:
                        raise BundleError(f"{path}: shorter than its array; rebuild it with `dvc repro serving`")
                    digest.update(memoryview(buffer)[:read])
                    left -= read
        except OSError as error:
            raise BundleError(f"{path}: cannot be read ({error}); rebuild it with `dvc repro serving`") from error
    digest.update(_blend_bytes(blend))
    if _version(digest) != version:
        raise BundleError(f"{folder}: content hash {_version(digest)} differs from the manifest's version {version} "
                          "(a file changed or was half written); rebuild it with `dvc repro serving`")


def _digest_prefix(name: str, dtype: np.dtype) -> bytes:
    return name.encode() + str(dtype).encode()


def _blend_bytes(blend: dict[str, Any]) -> bytes:
    return json.dumps(blend, sort_keys=True).encode()


def _version(digest) -> str:
    return digest.hexdigest()[:16]


def listened_tracks(user_ids: np.ndarray, track_ids: np.ndarray) -> tuple[RaggedTable, tuple[np.ndarray, np.ndarray]]:
    """Each user's distinct listened tracks (sorted), and (track ids, distinct listeners) of every listened track.

    One sort of int64 ``user << 31 | track`` keys serves both: the unique keys are the history rows in order,
    and counting their track halves counts distinct listeners.
    """
    _check_ids(TRAIN, "user_id", user_ids)
    _check_ids(TRAIN, "track_id", track_ids)
    keys = np.unique((user_ids.astype(np.int64) << _TRACK_BITS) | track_ids.astype(np.int64))
    users = (keys >> _TRACK_BITS).astype(np.int32)
    tracks = (keys & ((1 << _TRACK_BITS) - 1)).astype(np.int32)
    del keys
    track_index = unique_sorted(tracks)
    listeners = np.bincount(encode(tracks, track_index), minlength=len(track_index)).astype(np.int32)
    return RaggedTable.from_grouped(users, tracks), (track_index, listeners)


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
