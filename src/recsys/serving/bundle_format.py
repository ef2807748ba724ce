"""The serving bundle's file format: one table of every array, the manifest's keys and the content hash.

A bundle is a folder of ``<name>.npy`` files (one per row of ``ARRAYS``, in that order) and ``manifest.json``.
``bundle_builder.py`` writes it (the `serving` stage, with pandas); ``bundle_reader.py`` maps and checks it
(the service, numpy only). Both take the names, dtypes and the hash from here, so they cannot drift apart.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

FORMAT = 3  # 3: the manifest names the re-ranker's feature columns (``reranker_features``)
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ArraySpec:
    name: str  # the file name without ``.npy``: ``<table>.<part>``
    dtype: str
    shape: str  # what the array holds, along its axes


def _ragged(table: str, key: str, item: str, score: str | None) -> tuple[ArraySpec, ...]:
    """The files of a ``RaggedTable`` (``ragged.py``): key -> items (and scores), rows best first or sorted."""
    specs = (ArraySpec(f"{table}.keys", "int32", f"({table} rows,): {key}, sorted unique"),
             ArraySpec(f"{table}.offsets", "int64", f"({table} rows + 1,): row i is items[offsets[i]:offsets[i + 1]]"),
             ArraySpec(f"{table}.items", "int32", f"(entries,): {item}"))
    return specs + ((ArraySpec(f"{table}.scores", "float32", f"(entries,): {score}"),) if score else ())


ARRAYS: tuple[ArraySpec, ...] = (
    *_ragged("offline", "user id", "the user's final recommendations, best first", "ranker score"),
    *_ragged("similar", "track id", "similar tracks, best first", "cosine similarity of the ALS factors"),
    *_ragged("history", "user id", "tracks listened to in train, ascending id", None),
    *_ragged("played_next", "track id", "tracks played after it within a day, best first", "rule score"),
    *_ragged("album_tracks", "album id", "the album's catalog tracks in album order (ascending id)", None),
    *_ragged("artist_tracks", "artist id", "the artist's most played tracks, best first", "distinct train listeners"),
    ArraySpec("popular.items", "int32", "(catalog tracks,): every track, most distinct train listeners first"),
    ArraySpec("popular.listeners", "int32", "(catalog tracks,): distinct train listeners of popular.items"),
    ArraySpec("catalog.track_ids", "int32", "(catalog tracks,): sorted unique"),
    ArraySpec("catalog.name_offsets", "int64", "(catalog tracks + 1,): name i is name_bytes[offsets[i]:offsets[i + 1]]"),
    ArraySpec("catalog.name_bytes", "uint8", "(name bytes,): the names, UTF-8, back to back"),
    ArraySpec("catalog.albums", "int32", "(catalog tracks,): each track's first album, -1: none"),
    ArraySpec("catalog.artists", "int32", "(catalog tracks,): each track's first artist, -1: none"),
    ArraySpec("catalog.listeners", "int32", "(catalog tracks,): distinct train listeners"),
    ArraySpec("reranker.features", "int32", "(trees, depth): the column of reranker_features each split tests"),
    ArraySpec("reranker.borders", "float32", "(trees, depth): split thresholds (a row goes right when above)"),
    ArraySpec("reranker.leaves", "float64", "(trees, 2 ** depth): leaf values"),
)
ARRAY_NAMES = tuple(spec.name for spec in ARRAYS)

MANIFEST_KEYS = {
    "format": "FORMAT of the code that wrote it; another format is refused",
    "version": "the content hash (``content_digest``) of the arrays, the blend and the feature names",
    "blend": "the blend settings the `serving` stage chose (``BlendConfig.to_dict``)",
    "reranker_features": "the re-ranker's feature names, in column order (``reranker.RERANKER_FEATURES``)",
    "counts": "sizes of the tables (rows, entries, trees), for logs and the service's /health",
    "shape": "the longest row of the offline, similar and played-next tables",
    "files": "per array name: dtype and length (first axis), checked when the bundle is opened",
}

READ_CHUNK = 8 << 20  # bytes read per hash update when checking a bundle's content


def content_digest() -> "hashlib._Hash":
    return hashlib.sha256()


def array_prefix(name: str, dtype: Any) -> bytes:
    """What the hash takes before each array's bytes: its name and dtype."""
    return name.encode() + str(dtype).encode()


def settings_bytes(blend: dict[str, Any], reranker_features: list[str]) -> bytes:
    """What the hash takes after the arrays: the blend settings and the re-ranker's feature names."""
    return json.dumps(blend, sort_keys=True).encode() + json.dumps(list(reranker_features)).encode()


def version_of(digest) -> str:
    return digest.hexdigest()[:16]
