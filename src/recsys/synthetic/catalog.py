"""Synthetic music catalog: genres, artists, albums and tracks with latent popularity.

Sizes follow the real files at scale 1.0 (1M tracks, 658,724 albums, 153,581
artists, 166 catalog genres) and the latent attributes drive the listening model
in ``preferences``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from .names import genre_name, phrases

REAL_TRACKS = 1_000_000
REAL_ALBUMS = 658_724
REAL_ARTISTS = 153_581
CATALOG_GENRES = 166
UNKNOWN_GENRES = 30  # genre ids used by tracks but missing from the catalog (124..169 in the real data)
UNUSED_GENRES = 35  # catalog genres no track uses
BROAD_GENRES = np.array([11, 75, 102, 68, 3, 44, 14, 16, 20, 13])  # pop, rap, allrock, electronics, ...
NEW_RELEASE_SHARE = 0.2  # tracks released during 2022, the newest ids


@dataclass
class Catalog:
    """The clean latent catalog; ``raw_tables`` adds the real files' defects on top."""

    genre_ids: np.ndarray  # every genre id a track can carry: catalog ones first, then unknown ones
    n_catalog_genres: int
    genre_parent: np.ndarray  # broad genre id for each entry of genre_ids (-1: none)
    artist_ids: np.ndarray
    album_ids: np.ndarray
    tracks: pd.DataFrame  # track_id, genre_idx, artist_idx, album_idx, base_weight, release_day, peak_days, boost


def sparse_ids(rng: np.random.Generator, count: int, mean_gap: float) -> np.ndarray:
    """Increasing ids with random gaps, like the real catalog's sparse id space."""
    return np.cumsum(rng.integers(1, int(2 * mean_gap), count)).astype(np.int64)


def build_genres(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    low = np.arange(124)
    high = np.sort(rng.choice(np.arange(170, 1600), CATALOG_GENRES - len(low), replace=False))
    catalog = np.concatenate([low, high])
    unknown = np.sort(rng.choice(np.arange(124, 170), UNKNOWN_GENRES, replace=False))
    genre_ids = np.concatenate([catalog, unknown])
    parent = np.where(np.isin(genre_ids, BROAD_GENRES), -1, rng.choice(BROAD_GENRES, len(genre_ids)))
    return genre_ids, parent, len(catalog)


def genre_popularity(rng: np.random.Generator, genre_ids: np.ndarray, n_catalog: int) -> np.ndarray:
    """Zipf-like share of artists per genre; genre 0 ('all') and a few others get none."""
    weight = 1.0 / np.arange(1, len(genre_ids) + 1) ** 0.9
    weight = rng.permutation(weight)
    weight[np.isin(genre_ids, BROAD_GENRES)] *= 4.0
    unused = rng.choice(np.arange(1, n_catalog), UNUSED_GENRES - 1, replace=False)
    weight[unused] = 0.0
    weight[genre_ids == 0] = 0.0
    weight[n_catalog:] *= 0.35  # unknown genres carry ~5% of tracks, as in the real file
    return weight / weight.sum()


def build_catalog(rng: np.random.Generator, scale: float) -> Catalog:
    n_tracks = max(int(REAL_TRACKS * scale), 200)
    n_artists = max(int(REAL_ARTISTS * scale), 30)
    genre_ids, parent, n_catalog = build_genres(rng)
    genre_share = genre_popularity(rng, genre_ids, n_catalog)

    artist_genre = rng.choice(len(genre_ids), n_artists, p=genre_share)
    artist_popularity = rng.lognormal(0.0, 1.3, n_artists)
    artist_size = rng.pareto(1.1, n_artists) + 1.0  # a few prolific artists, most with a handful of tracks
    track_artist = np.sort(
        np.searchsorted(np.cumsum(artist_size) / artist_size.sum(), rng.random(n_tracks), side="right")
    ).clip(0, n_artists - 1)
    order = rng.permutation(n_tracks)  # ids are not grouped by artist
    track_artist = track_artist[order]

    track_genre = artist_genre[track_artist].copy()
    stray = rng.random(n_tracks) < 0.1
    track_genre[stray] = rng.choice(len(genre_ids), int(stray.sum()), p=genre_share)

    by_artist = np.argsort(track_artist, kind="stable")
    new_album = rng.random(n_tracks) < REAL_ALBUMS / REAL_TRACKS * 0.85
    new_album[0] = True
    new_album[1:] |= np.diff(track_artist[by_artist]) != 0
    album_of_sorted = np.cumsum(new_album) - 1
    track_album = np.empty(n_tracks, dtype=np.int64)
    track_album[by_artist] = album_of_sorted
    n_albums = int(album_of_sorted[-1]) + 1

    release_day = np.full(n_tracks, -1, dtype=np.int32)
    n_new = int(n_tracks * NEW_RELEASE_SHARE)
    release_day[n_tracks - n_new:] = np.sort(rng.integers(0, 365, n_new))
    tracks = pd.DataFrame(
        {
            "track_id": sparse_ids(rng, n_tracks, 100.0).astype(np.int64),
            "genre_idx": track_genre.astype(np.int32),
            "artist_idx": track_artist.astype(np.int32),
            "album_idx": track_album.astype(np.int32),
            "base_weight": artist_popularity[track_artist] * rng.lognormal(0.0, 1.6, n_tracks),
            "release_day": release_day,
            "peak_days": rng.uniform(7.0, 45.0, n_tracks),
            "boost": rng.lognormal(1.5, 1.0, n_tracks),
        }
    )
    return Catalog(
        genre_ids=genre_ids,
        n_catalog_genres=n_catalog,
        genre_parent=parent,
        artist_ids=sparse_ids(rng, n_artists, 100.0),
        album_ids=sparse_ids(rng, n_albums, 32.0),
        tracks=tracks,
    )


@dataclass
class RawCatalog:
    tracks: pa.Table  # the tracks.parquet table
    catalog_names: pd.DataFrame
    ghost_track_ids: np.ndarray  # listened tracks missing from tracks.parquet


def _count(rate: float, n: int) -> int:
    """Defect count at ``rate``, at least one so every cleaning rule is exercised at any scale."""
    return max(1, int(round(rate * n)))


def list_column(values: np.ndarray, present: np.ndarray) -> pa.ListArray:
    """A list<int64> column from (rows, slots) values, keeping the slots where ``present``."""
    offsets = np.concatenate([[0], np.cumsum(present.sum(axis=1))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values[present].astype(np.int64)))


def raw_tables(rng: np.random.Generator, catalog: Catalog) -> RawCatalog:
    """The real files' shape, with their defects at the real rates (see REAL_DATA.md)."""
    tracks = catalog.tracks
    n = len(tracks)

    def pick(rate: float) -> np.ndarray:
        return rng.choice(n, _count(rate, n), replace=False)

    def flags(rate: float) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        mask[pick(rate)] = True
        return mask

    genre_idx = tracks["genre_idx"].to_numpy()
    parent = catalog.genre_parent[genre_idx]
    genres = np.column_stack([parent, catalog.genre_ids[genre_idx]])
    genres_present = np.column_stack([(parent >= 0) & (rng.random(n) < 0.8), np.ones(n, dtype=bool)])
    genres_present[flags(0.0037)] = False

    unknown_album = catalog.album_ids[-1] + 1 + np.arange(n)
    albums = np.column_stack([
        catalog.album_ids[tracks["album_idx"].to_numpy()],
        catalog.album_ids[rng.integers(0, len(catalog.album_ids), n)],  # compilations
        unknown_album,
    ])
    albums_present = np.column_stack([np.ones(n, dtype=bool), rng.random(n) < 0.12, flags(0.001)])
    albums_present[flags(0.00002)] = False

    unknown_artist = catalog.artist_ids[-1] + 1 + np.arange(n)
    artists = np.column_stack([
        catalog.artist_ids[tracks["artist_idx"].to_numpy()],
        catalog.artist_ids[rng.integers(0, len(catalog.artist_ids), n)],  # featured artists
        unknown_artist,
    ])
    artists_present = np.column_stack([np.ones(n, dtype=bool), rng.random(n) < 0.08, flags(0.001)])
    artists_present[flags(0.0154)] = False

    table = pa.table({
        "track_id": pa.array(tracks["track_id"].to_numpy(np.int64)),
        "albums": list_column(albums, albums_present),
        "artists": list_column(artists, artists_present),
        "genres": list_column(genres, genres_present),
    })
    ghosts = flags(0.003)
    keep = np.concatenate([np.flatnonzero(~ghosts), np.sort(pick(0.0001))])  # a few duplicated rows at the end
    names = catalog_names(rng, catalog)
    unnamed = tracks["track_id"].to_numpy()[pick(0.0005)]
    names = names[~((names["type"] == "track") & names["id"].isin(unnamed))].reset_index(drop=True)
    return RawCatalog(
        tracks=table.take(pa.array(keep)),
        catalog_names=names,
        ghost_track_ids=tracks["track_id"].to_numpy()[ghosts],
    )


def catalog_names(rng: np.random.Generator, catalog: Catalog) -> pd.DataFrame:
    genre_ids = catalog.genre_ids[: catalog.n_catalog_genres]
    parts = [
        ("album", catalog.album_ids, phrases(rng, len(catalog.album_ids))),
        ("artist", catalog.artist_ids, phrases(rng, len(catalog.artist_ids))),
        ("genre", genre_ids, np.array([genre_name(g) for g in genre_ids], dtype=object)),
        ("track", catalog.tracks["track_id"].to_numpy(), phrases(rng, len(catalog.tracks))),
    ]
    return pd.concat(
        [pd.DataFrame({"id": ids.astype(np.int64), "type": kind, "name": names}) for kind, ids, names in parts],
        ignore_index=True,
    )
