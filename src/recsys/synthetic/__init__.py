"""Synthetic Yandex Music files: the real schema and statistics, with a known ground truth.

``generate_dataset`` writes tracks.parquet, catalog_names.parquet and
interactions.parquet exactly as the real files are typed, plus ``ground_truth/``,
the generator's preference model, which the evaluation uses as an oracle ceiling.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .catalog import build_catalog, raw_tables
from .listening import SessionConfig, build_users, iter_events
from .preferences import GROUND_TRUTH_DIR, has_ground_truth, load_ground_truth

__all__ = ["generate_dataset", "SessionConfig", "has_ground_truth", "load_ground_truth", "GROUND_TRUTH_DIR"]



def generate_dataset(out_dir: Path, scale: float, seed: int, chunk_users: int, sessions: SessionConfig,
                     logger: logging.Logger) -> dict:
    """Write the three raw files and the ground truth into ``out_dir``; return summary counts."""
    rng = np.random.default_rng(seed)
    catalog = build_catalog(rng, scale)
    raw = raw_tables(rng, catalog)
    pq.write_table(raw.tracks, out_dir / "tracks.parquet", compression="zstd")
    pq.write_table(pa.Table.from_pandas(raw.catalog_names, preserve_index=False), out_dir / "catalog_names.parquet",
                   compression="zstd")
    logger.info("catalog: %d tracks, %d albums, %d artists", len(catalog.tracks), len(catalog.album_ids),
                len(catalog.artist_ids))

    users = build_users(rng, catalog, scale)
    logger.info("users: %d, expected events: %d", len(users.table), int(users.table["n_events"].sum()))
    n_events = 0
    writer = None
    for chunk in iter_events(rng, users, catalog, chunk_users, sessions):
        # the real file was concatenated from parts: its stored pandas index is per-part, not unique
        chunk.index = pd.Index(chunk["track_seq"].to_numpy(np.int64) - 1)
        table = pa.Table.from_pandas(chunk, preserve_index=True)
        writer = writer or pq.ParquetWriter(out_dir / "interactions.parquet", table.schema, compression="zstd")
        writer.write_table(table)
        n_events += len(chunk)
        logger.info("events written: %d (%.0f%%)", n_events, 100 * n_events / users.table["n_events"].sum())
    writer.close()
    write_ground_truth(out_dir / GROUND_TRUTH_DIR, catalog, users)
    return {"tracks": len(catalog.tracks), "users": len(users.table), "events": n_events}


def write_ground_truth(folder: Path, catalog, users) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tracks = catalog.tracks.drop(columns=["album_idx"])
    tracks.to_parquet(folder / "tracks.parquet", index=False)
    users.table.drop(columns=["n_events", "join_day", "leave_day"]).to_parquet(folder / "users.parquet", index=False)
    users.genres.to_parquet(folder / "user_genres.parquet", index=False)
    users.artists.to_parquet(folder / "user_artists.parquet", index=False)
    meta = {"n_genres": int(len(catalog.genre_ids)), "n_artists": int(len(catalog.artist_ids))}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
