"""Keyed rows of variable length (CSR without a matrix shape): the serving bundle's one storage layout.

A table is flat arrays: sorted unique int32 ``keys``, int64 ``offsets`` (row ``i`` is
``offsets[i]:offsets[i + 1]``), int32 ``items`` and optional float32 ``scores``. A lookup is one
binary search and two slices, so a memory-mapped table answers without reading anything up front
(``bundle_builder.py`` writes the arrays, ``bundle_reader.py`` maps them).
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from ..arrays import segment_positions

_INT32_MIN, _INT32_MAX = int(np.iinfo(np.int32).min), int(np.iinfo(np.int32).max)
_EMPTY_ITEMS = np.empty(0, dtype=np.int32)
_EMPTY_SCORES = np.empty(0, dtype=np.float32)


@dataclass(frozen=True)
class RaggedTable:
    """``key -> (items, scores)`` rows stored as four flat arrays (``scores`` may be absent)."""

    keys: np.ndarray  # int32, sorted, unique
    offsets: np.ndarray  # int64, len(keys) + 1
    items: np.ndarray  # int32
    scores: np.ndarray | None = None  # float32, aligned with items

    @classmethod
    def from_grouped(cls, entry_keys: np.ndarray, items: np.ndarray,
                     scores: np.ndarray | None = None) -> "RaggedTable":
        """Build from entries already grouped by key in ascending key order (row order is kept)."""
        entry_keys = np.asarray(entry_keys)
        if len(entry_keys) and np.any(entry_keys[1:] < entry_keys[:-1]):
            raise ValueError("entries must be sorted by key")
        starts = np.flatnonzero(np.r_[True, entry_keys[1:] != entry_keys[:-1]]) if len(entry_keys) else \
            np.empty(0, dtype=np.int64)
        offsets = np.append(starts, len(entry_keys)).astype(np.int64)
        return cls(entry_keys[starts].astype(np.int32), offsets, np.asarray(items, dtype=np.int32),
                   None if scores is None else np.asarray(scores, dtype=np.float32))

    @classmethod
    def from_ranked(cls, entry_keys: np.ndarray, items: np.ndarray, scores: np.ndarray,
                    rank: np.ndarray) -> "RaggedTable":
        """Build from a long ranked table in any row order: rows by key, entries by rank within a row."""
        order = np.lexsort((rank, entry_keys))
        return cls.from_grouped(np.asarray(entry_keys)[order], np.asarray(items)[order], np.asarray(scores)[order])

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def n_entries(self) -> int:
        return len(self.items)

    def row_index(self, key: int) -> int:
        """Position of ``key`` in ``keys``, -1 when absent.

        The key is cast to int32, the keys' dtype: a Python int against int32 keys would make numpy copy
        the whole key array to int64 on every lookup (milliseconds at 1.37M users).
        """
        if not _INT32_MIN <= key <= _INT32_MAX:
            return -1
        position = int(self.keys.searchsorted(np.int32(key)))
        return position if position < len(self.keys) and self.keys[position] == key else -1

    def rows(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows of several int32 ``keys`` at once: (number of the key each entry came from, items, scores).

        A constant number of numpy calls however many keys: what a request reading a few rows needs.
        Absent keys contribute nothing; the table must have scores.
        """
        keys = np.asarray(keys, dtype=np.int32)
        if len(self.keys) == 0:
            return np.empty(0, dtype=np.int64), self.items[:0], self.scores[:0]
        position = np.minimum(self.keys.searchsorted(keys), len(self.keys) - 1)
        begins = self.offsets[position]
        ends = np.where(self.keys[position] == keys, self.offsets[position + 1], begins)
        owner, entries = segment_positions(begins, ends)
        return owner, self.items[entries], self.scores[entries]

    def __contains__(self, key: int) -> bool:
        return self.row_index(key) >= 0

    def row(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        """The items and scores of ``key`` (empty arrays when absent; zeros when the table has no scores)."""
        position = self.row_index(key)
        if position < 0:
            return _EMPTY_ITEMS, _EMPTY_SCORES
        begin, end = int(self.offsets[position]), int(self.offsets[position + 1])
        items = self.items[begin:end]
        if self.scores is None:
            return items, np.zeros(end - begin, dtype=np.float32)
        return items, self.scores[begin:end]

    def check(self) -> None:
        """Raise ValueError when the arrays do not form a table (a truncated or mixed-up bundle)."""
        if len(self.offsets) != len(self.keys) + 1 or self.offsets[0] != 0 or self.offsets[-1] != len(self.items):
            raise ValueError(f"offsets do not match {len(self.keys)} keys and {len(self.items)} items")
        if self.scores is not None and len(self.scores) != len(self.items):
            raise ValueError(f"{len(self.scores)} scores for {len(self.items)} items")
