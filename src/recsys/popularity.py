"""Top-popular baseline: tracks with the most distinct listeners in train."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .arrays import unique_sorted
from .streaming import IdCodes, row_groups

KEY_SPACE = 1 << 32  # pair keys are uint32 within a block of users: half the memory and sort time of int64


def distinct_listeners(pairs: Iterable[tuple[np.ndarray, np.ndarray]], track_ids: np.ndarray) -> np.ndarray:
    """Distinct users per track of the sorted unique ``track_ids`` (a repeated (user, track) pair counts once),
    from (user ids, track ids) chunks, e.g. an events file's row groups; every track id is one of ``track_ids``.

    Users are cut into blocks small enough that ``user within block * tracks + track`` fits uint32; each
    chunk's keys go to their block, and each block is sorted and counted on its own: 4 bytes a listen held,
    sorts of a few hundred thousand keys, whatever the order of the rows.
    """
    n_tracks = max(len(track_ids), 1)
    block_users = KEY_SPACE // n_tracks
    encode = IdCodes(track_ids)
    blocks: dict[int, list[np.ndarray]] = {}
    for users, tracks in pairs:
        users, codes = users.astype(np.int64), encode(tracks)
        if len(codes) and codes.min() < 0:
            raise ValueError("distinct_listeners: a listened track is not one of track_ids")
        block = users // block_users
        keys = ((users - block * block_users) * n_tracks + codes).astype(np.uint32)
        if len(block) and block.min() == block.max():
            blocks.setdefault(int(block[0]), []).append(keys)
            continue
        if (block[1:] < block[:-1]).any():  # rows not by user: group them by block first
            order = np.argsort(block, kind="stable")
            block, keys = block[order], keys[order]
        found, starts = np.unique(block, return_index=True)
        for number, part in zip(found.tolist(), np.split(keys, starts[1:])):
            blocks.setdefault(number, []).append(part)
    counts = np.zeros(n_tracks, dtype=np.int64)
    for number in sorted(blocks):
        keys = np.concatenate(blocks.pop(number))
        keys.sort()
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        counts += np.bincount(keys[first] % n_tracks, minlength=n_tracks)
    return counts[:len(track_ids)]


def top_by_listeners(track_ids: np.ndarray, listeners: np.ndarray, items: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` tracks with most listeners (none without); ties broken by the lower track id, for determinism."""
    heard = listeners > 0
    track_ids, listeners = track_ids[heard], listeners[heard]
    order = np.lexsort((track_ids, -listeners))[:n]
    top = pd.DataFrame({"track_id": track_ids[order].astype(np.int32), "listeners": listeners[order].astype(np.int64),
                        "rank": np.arange(1, len(order) + 1, dtype=np.int16)})
    names = items.set_index("track_id")["name"]
    top["name"] = names.reindex(top["track_id"]).to_numpy()
    return top


def top_popular(train: pd.DataFrame, items: pd.DataFrame, n: int) -> pd.DataFrame:
    """``top_by_listeners`` of an in-memory train frame."""
    track_ids = unique_sorted(train["track_id"].to_numpy())
    listeners = distinct_listeners([(train["user_id"].to_numpy(), train["track_id"].to_numpy())], track_ids)
    return top_by_listeners(track_ids, listeners, items, n)


def top_popular_of_file(train_path: Path | str, items: pd.DataFrame, n: int) -> pd.DataFrame:
    """``top_popular`` of a train file read one row group at a time, only its user and track columns: at the real
    data's size the listens are never held as a table (the train tracks are among the items' tracks)."""
    track_ids = unique_sorted(items["track_id"].to_numpy())
    pairs = ((batch["user_id"].to_numpy(), batch["track_id"].to_numpy())
             for batch in row_groups(train_path, ["user_id", "track_id"]))
    return top_by_listeners(track_ids, distinct_listeners(pairs, track_ids), items, n)
