"""Vectorised helpers on sorted integer arrays: id encoding, membership and lookup, group positions.

Pure numpy on ids and keys, no tables or models: the low-level layer every stage shares (RecTools keeps the
same kind of helpers in ``utils/indexing.py``). The user x track matrix and the ranked tables built on it are
in ``interactions``.
"""
from __future__ import annotations

import numpy as np

# Ids spanning at most this many values (beyond the count of distinct ids) are encoded via a lookup table.
_DENSE_SPAN_SLACK = 1 << 24
# A lookup table indexed by id costs about 10 ns a slot to build and 20 ns a lookup, a binary search in a
# million ids 100-400 ns: for sparse ids (real track ids reach 10^8) a big query still pays for the table,
# up to this span (512 MiB of int32)
MAX_TABLE_SPAN = 1 << 27
_QUERIES_PER_TABLE_SLOT = 8


def encode(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """int32 position of each value in the sorted unique ``ids``, -1 where absent: a lookup table indexed by id
    when the ids are dense or the query is big enough to pay for building one, else a binary search."""
    values = np.asarray(values)
    if len(ids) == 0 or len(values) == 0:
        return np.full(len(values), -1, dtype=np.int32)
    if table_pays(ids, len(values)):
        return lookup(id_table(ids), values, -1)
    return find_sorted(ids, values).astype(np.int32)


def table_pays(ids: np.ndarray, queries: int) -> bool:
    """Whether ``queries`` lookups in the sorted unique ``ids`` go faster through ``id_table`` than by search."""
    low, high = int(ids[0]), int(ids[-1])
    dense = high < len(ids) + _DENSE_SPAN_SLACK
    return low >= 0 and (dense or (high < MAX_TABLE_SPAN and high < _QUERIES_PER_TABLE_SLOT * queries))


def id_table(ids: np.ndarray) -> np.ndarray:
    """Position of each of the sorted unique non-negative ``ids``, as an int32 table indexed by id (-1 elsewhere)."""
    table = np.full(int(ids[-1]) + 1 if len(ids) else 0, -1, dtype=np.int32)
    table[ids] = np.arange(len(ids), dtype=np.int32)
    return table


def lookup(table: np.ndarray, ids: np.ndarray, default) -> np.ndarray:
    """``table[ids]``, ``default`` for ids outside the table (checked once per call, masked only when needed)."""
    ids = np.asarray(ids)
    if len(ids) == 0 or (ids.min() >= 0 and ids.max() < len(table)):
        return table[ids]
    inside = (ids >= 0) & (ids < len(table))
    found = np.full(len(ids), default, dtype=table.dtype)
    found[inside] = table[ids[inside]]
    return found


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values; a presence bitmap instead of a sort when the ids are small non-negative ints."""
    values = np.asarray(values)
    if len(values) == 0:
        return values[:0].copy()
    low, high = int(values.min()), int(values.max())
    if low >= 0 and high < 4 * len(values) + _DENSE_SPAN_SLACK:
        present = np.zeros(high + 1, dtype=bool)
        present[values] = True
        return np.flatnonzero(present).astype(values.dtype)
    import pandas as pd  # here, not at the top: the service imports this module and never loads pandas

    return np.sort(pd.unique(values))


def sort_in_place_distinct(keys: np.ndarray) -> np.ndarray:
    """Sort ``keys`` in place and return the mask of each value's first occurrence: ``np.unique`` without its
    copies, for key arrays of hundreds of millions (the caller compacts them as its memory allows)."""
    keys.sort()
    distinct = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
    return distinct


def segment_positions(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(segment number, position) for every position of the ranges [starts[i], ends[i]), vectorised."""
    lengths = ends - starts
    owner = np.repeat(np.arange(len(starts)), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return owner, offsets + np.repeat(starts, lengths)


def positions_in_groups(sorted_groups: np.ndarray) -> np.ndarray:
    """0-based position of each element within its run of equal values (``sorted_groups`` is sorted)."""
    return np.arange(len(sorted_groups)) - np.searchsorted(sorted_groups, sorted_groups)


def pair_keys(rows: np.ndarray, cols: np.ndarray, n_cols: int) -> np.ndarray:
    """One int64 key ``row * n_cols + col`` per (row, col) pair: sorting or searching keys handles pairs at once.

    >>> pair_keys(np.array([0, 1, 1]), np.array([2, 0, 3]), 4)
    array([2, 4, 7])
    """
    return np.asarray(rows).astype(np.int64) * n_cols + cols


def find_sorted(sorted_keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Position of each ``query`` value in the sorted unique ``sorted_keys``, -1 where absent (binary search).

    The query is cast to the keys' dtype first: searching int64 values in int32 keys would make numpy
    convert (copy) the whole key array on every call.
    """
    query, inside = as_dtype_of(sorted_keys, query)
    if len(sorted_keys) == 0:
        return np.full(len(query), -1, dtype=np.int64)
    position = np.searchsorted(sorted_keys, query).clip(0, len(sorted_keys) - 1)
    return np.where((sorted_keys[position] == query) & inside, position, -1)


def as_dtype_of(keys: np.ndarray, query) -> tuple[np.ndarray, np.ndarray | bool]:
    """``query`` in the integer dtype of ``keys``, and where its values fit that dtype (others cannot match)."""
    query = np.asarray(query)
    if query.dtype == keys.dtype or not (np.issubdtype(query.dtype, np.integer) and np.issubdtype(keys.dtype, np.integer)):
        return query, True
    limits = np.iinfo(keys.dtype)
    inside = (query >= limits.min) & (query <= limits.max)
    return np.where(inside, query, 0).astype(keys.dtype), inside


def lookup_sorted(sorted_keys: np.ndarray, values: np.ndarray, query: np.ndarray, default) -> np.ndarray:
    """``values`` aligned with the sorted unique ``sorted_keys``, read at ``query``; ``default`` where absent."""
    position = find_sorted(sorted_keys, query)
    if len(sorted_keys) == 0:
        return np.full(len(position), default, dtype=values.dtype)
    return np.where(position >= 0, values[position], default)
