"""Opening the serving bundle: map its arrays, check them, and hand the service a ``ServingBundle`` (numpy only).

The bundle (``bundle_format.py``; written by ``bundle_builder.py`` in the `serving` stage) is everything the
service answers from. Opening it maps the files, so only the pages a request touches become resident.
Opening also checks the content hash (the version) by streaming the files through ``read``, not through
the map: ~1 s at full size (1.37M users), and the process's RSS does not grow by the bundle; a bundle
copied, pulled or rebuilt halfway is refused instead of served, and so is one whose re-ranker was trained
on other feature columns than this code builds.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..arrays import find_sorted
from .blend_config import BlendConfig
from .bundle_format import (ARRAY_NAMES, ARRAYS, FORMAT, MANIFEST, READ_CHUNK, array_prefix, content_digest,
                            settings_bytes, version_of)
from .ragged import RaggedTable
from .reranker import RERANKER_FEATURES
from .trees import TreeEnsemble

# the format's tables (``<table>.<part>`` files) that are ragged: the rest are the popularity order, the
# catalog and the trees, whose parts are the fields of ``TrackCatalog`` and ``TreeEnsemble``
RAGGED = tuple(dict.fromkeys(name.split(".")[0] for name in ARRAY_NAMES if name.endswith(".offsets")))
REBUILD = "rebuild it with `dvc repro serving`"


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

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the bundle under its file name (without ``.npy``), in the order of ``ARRAYS``."""
        return {name: self._array(name) for name in ARRAY_NAMES}

    def _array(self, name: str) -> np.ndarray:
        table, part = name.split(".")
        if table == "popular":
            return self.popular if part == "items" else self.popular_listeners
        return getattr(getattr(self, table), part)

    @classmethod
    def open(cls, folder: Path | str, mmap: bool = True, verify: bool = True) -> "ServingBundle":
        """Map a saved bundle; a missing or inconsistent folder raises ``BundleError`` naming the problem.

        ``verify`` recomputes the content hash and compares it with the manifest's version (see the module doc).
        """
        folder = Path(folder)
        manifest = read_manifest(folder)
        check_reranker_features(folder / MANIFEST, manifest.get("reranker_features"))
        arrays = {}
        for spec in ARRAYS:
            path, listed = folder / f"{spec.name}.npy", manifest["files"][spec.name]
            try:
                # a plain ndarray view of the map: slicing an np.memmap costs a Python-level hook per slice
                array = np.asarray(np.load(path, mmap_mode="r" if mmap else None))
            except (OSError, ValueError) as error:
                raise BundleError(f"{path}: cannot be read ({error}); {REBUILD}") from error
            if len(array) != listed["length"] or str(array.dtype) != listed["dtype"]:
                raise BundleError(f"{path}: {len(array)} x {array.dtype}, manifest says "
                                  f"{listed['length']} x {listed['dtype']}")
            if str(array.dtype) != spec.dtype:
                raise BundleError(f"{path}: {array.dtype}, format {FORMAT} stores {spec.dtype}; {REBUILD}")
            arrays[spec.name] = array
        try:
            blend = BlendConfig.from_dict(manifest["blend"])
        except (ValueError, TypeError) as error:
            raise BundleError(f"{folder / MANIFEST}: blend settings: {error}; {REBUILD}") from error
        if verify:
            check_content(folder, manifest["version"], arrays, manifest["blend"], manifest["reranker_features"])
        parts: dict[str, dict[str, np.ndarray]] = {}
        for name, array in arrays.items():
            table, part = name.split(".")
            parts.setdefault(table, {})[part] = array
        reranker = TreeEnsemble(**parts["reranker"])
        if "learned" in (blend.strategy, blend.cold_strategy) and not len(reranker):
            raise BundleError(f"{folder / MANIFEST}: the blend uses the learned re-ranker but the bundle has none; "
                              f"{REBUILD}")
        tables = {table: RaggedTable(**parts[table]) for table in RAGGED}
        for name, table in tables.items():
            try:
                table.check()
            except ValueError as error:
                raise BundleError(f"{folder}: table {name}: {error}; {REBUILD}") from error
        return cls(
            **tables,
            popular=parts["popular"]["items"],
            popular_listeners=parts["popular"]["listeners"],
            catalog=TrackCatalog(**parts["catalog"]),
            blend=blend,
            reranker=reranker,
            manifest=manifest,
        )


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the bundle in ``folder``, checked for this code's format and list of arrays."""
    path = folder / MANIFEST
    if not path.exists():
        raise BundleError(f"{path} not found: build the bundle with `dvc repro serving`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["files"], manifest["version"], manifest["blend"]
    except (ValueError, KeyError, TypeError) as error:
        raise BundleError(f"{path}: not a bundle manifest ({error!r}); {REBUILD}") from error
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: format {manifest.get('format')!r}, this code reads format {FORMAT}; {REBUILD}")
    if sorted(manifest["files"]) != sorted(ARRAY_NAMES):
        missing = sorted(set(ARRAY_NAMES) - set(manifest["files"]))
        extra = sorted(set(manifest["files"]) - set(ARRAY_NAMES))
        raise BundleError(f"{path}: files differ from this code's format {FORMAT} (missing {missing}, "
                          f"unexpected {extra}); {REBUILD}")
    return manifest


def check_reranker_features(where: Path, found: Any) -> None:
    """Refuse a bundle whose re-ranker columns are not the ones ``reranker.candidate_features`` builds.

    The trees test columns by position, so a renamed, added or reordered feature would silently score
    the wrong columns.
    """
    if found != list(RERANKER_FEATURES):
        raise BundleError(f"{where}: the re-ranker was trained on features {found}, but this code builds "
                          f"{list(RERANKER_FEATURES)} (expected those names in that order); {REBUILD}")


def check_content(folder: Path, version: str, arrays: dict[str, np.ndarray], blend: dict[str, Any],
                  reranker_features: list[str]) -> None:
    """Raise ``BundleError`` unless the files' data, the blend settings and the feature names hash to
    ``version`` (what ``bundle_builder.save_bundle`` wrote).

    Each ``.npy`` file ends with its array's bytes, so its last ``nbytes`` bytes are hashed with plain
    reads: the page cache holds them, the process does not.
    """
    digest = content_digest()
    buffer = bytearray(READ_CHUNK)
    for name, array in arrays.items():
        path = folder / f"{name}.npy"
        digest.update(array_prefix(name, array.dtype))
        try:
            with path.open("rb", buffering=0) as file:
                left = array.nbytes
                if left:
                    file.seek(-left, 2)
                while left:
                    read = file.readinto(memoryview(buffer)[:min(left, READ_CHUNK)])
                    if not read:
                        raise BundleError(f"{path}: shorter than its array; {REBUILD}")
                    digest.update(memoryview(buffer)[:read])
                    left -= read
        except OSError as error:
            raise BundleError(f"{path}: cannot be read ({error}); {REBUILD}") from error
    digest.update(settings_bytes(blend, reranker_features))
    if version_of(digest) != version:
        raise BundleError(f"{folder}: content hash {version_of(digest)} differs from the manifest's version {version} "
                          f"(a file changed or was half written); {REBUILD}")
