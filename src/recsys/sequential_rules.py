""""Played next": for every track, the tracks users played after it within the same day (sequential rules).

The sequential-rules recommender of Ludewig, Mauro, Latifi and Jannach (2019, "Empirical analysis of
session-based recommendation algorithms"): a session is one user's listens of one day in listening order
(day, ``track_seq``); every pair (a at position i, b at position j) of a session with ``0 < j - i <= window``
is a rule a -> b, weighted by its distance d = j - i. Positions count listens, not ``track_seq`` values, so a
listen dropped by cleaning or train sampling does not open a gap. A pair never crosses a day or a user.

Scoring, with decay = ``distance_decay``, p = ``popularity_exponent``::

    raw(a, b)    = sum over occurrences of b d steps after a (1 <= d <= window) of decay ** (d - 1)
    out(a)       = sum over all b of raw(a, b)               (a's decayed continuations, before any filter)
    listeners(b) = number of distinct train users of b
    score(a, b)  = raw(a, b) / out(a) / listeners(b) ** p,   kept where raw(a, b) >= min_support, a != b

Why this form: raw / out(a) is the share of a's (decayed) continuations that went to b, a number in (0, 1]
whatever a's popularity, so the scores of a rarely and a often played track mean the same thing (dividing
by out(a) keeps each row's order; it is what makes rows comparable, e.g. for blending). A chart hit follows
everything, so b is damped by its listener count: p = 0 leaves the pure transition share, p = 1 divides by
the full popularity (lift-like, rewards rare tracks seen once), 0.5 sits between. ``min_support`` filters on
the decayed raw weight, not on distinct users: it needs no second accumulator over the 184M listens, and
with decay 0.5 the default 1 means "at least one listen right after a, or the equivalent at larger
distances" (one co-occurrence at distance 2 alone, 0.5, is dropped as noise).

Memory: the train columns are read a row group at a time into compact arrays (``Listens``); listens are
processed in batches of whole users (``batch_listens`` rows, a user never split so distinct listeners add
up across batches); each batch's pairs are summed into a sparse track x track matrix and the batch
matrices are merged like a binary counter (each sum costs about its result, log-many merges per pair
instead of one per batch). Every matrix is kept as ``ROW_RANGES`` pieces of rows, merged piece by piece, and
the counter's last few matrices are never summed whole: a range of rows is summed, scored and cut to its top
``n`` at a time (``ranked_pairs``), so no second copy of every pair exists at any step.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import scipy.sparse as sp

from .arrays import encode, sort_in_place_distinct, unique_sorted
from .columns import NEXT_TRACK, STARTED_AT, TRACK, TRACK_SEQ, USER
from .interactions import ranked_table
from .sequences import day_numbers, is_listening_order

SEQUENCE_COLUMNS = [USER, TRACK, TRACK_SEQ, STARTED_AT]
ROW_RANGES = 32  # the pair matrices are kept as this many row ranges: what one merge or scoring step holds


@dataclass
class Listens:
    """The four columns the rules read, compact: ids as stored (int32), ``track_seq`` int16, the day as int32.

    At 207M train listens a pandas frame holds ``started_at`` as int64 nanoseconds (1.7 GB) and an int64
    day copy beside it; these arrays take 14 bytes a listen, and ``read`` fills them row group by row group.
    """

    users: np.ndarray
    days: np.ndarray  # days since 1970 (``sequences.day_numbers``)
    seqs: np.ndarray
    tracks: np.ndarray

    @classmethod
    def from_frame(cls, train: pd.DataFrame) -> "Listens":
        return cls(train[USER].to_numpy(), _days(train[STARTED_AT].to_numpy()), train[TRACK_SEQ].to_numpy(),
                   train[TRACK].to_numpy())

    @classmethod
    def read(cls, path: Path | str) -> "Listens":
        """Read ``path`` (a train split) one row group at a time into preallocated arrays."""
        source = pq.ParquetFile(path)
        schema = source.schema_arrow
        columns = {name: np.empty(source.metadata.num_rows, dtype=schema.field(name).type.to_pandas_dtype())
                   for name in (USER, TRACK_SEQ, TRACK)}
        days = np.empty(source.metadata.num_rows, dtype=np.int32)
        begin = 0
        for group in range(source.num_row_groups):
            table = source.read_row_group(group, columns=SEQUENCE_COLUMNS)
            end = begin + table.num_rows
            for name, array in columns.items():
                array[begin:end] = table.column(name).to_numpy()
            days[begin:end] = _days(table.column(STARTED_AT).to_numpy())
            begin = end
            del table
        return cls(columns[USER], days, columns[TRACK_SEQ], columns[TRACK])


def _days(started_at: np.ndarray) -> np.ndarray:
    """int32 day numbers of timestamps of any unit (``day_numbers`` reads nanoseconds)."""
    return day_numbers(np.asarray(started_at, dtype="datetime64[ns]"))


def listening_order(users: np.ndarray, days: np.ndarray, seqs: np.ndarray) -> np.ndarray | None:
    """Permutation sorting listens by (user, day, track_seq), ties in row order (as the Spark engine); None
    when already sorted (the split keeps the events' order, sorted on the data this runs on, so the sort and
    its copies are usually skipped; the check runs in chunks, without 207M-long temporaries)."""
    if is_listening_order(users, days, seqs):
        return None
    return np.lexsort((seqs, days, users))


def session_starts(users: np.ndarray, days: np.ndarray) -> np.ndarray:
    """True where a listen opens a new user-day (sorted input): pairs must not cross these."""
    starts = np.ones(len(users), dtype=bool)
    starts[1:] = (users[1:] != users[:-1]) | (days[1:] != days[:-1])
    return starts


def user_batches(users: np.ndarray, batch_listens: int) -> np.ndarray:
    """Row cuts (first 0, last len) of batches of about ``batch_listens`` listens, each cut at a user boundary
    (a user larger than a batch gets a batch of its own)."""
    boundaries = np.r_[np.flatnonzero(users[1:] != users[:-1]) + 1, len(users)]  # user starts after the first, end
    targets = np.arange(batch_listens, len(users), batch_listens)
    return np.unique(np.r_[0, boundaries[np.searchsorted(boundaries, targets)], len(users)])


def successor_pairs(codes: np.ndarray, starts: np.ndarray, window: int, decay: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, weight) for every pair of one session within ``window`` steps: one shifted comparison per
    distance instead of a loop over sessions."""
    session = np.cumsum(starts, dtype=np.int32)  # a batch has far fewer than 2**31 listens
    keeps = [(session[distance:] == session[:-distance]) & (codes[distance:] != codes[:-distance])
             for distance in range(1, min(window, len(codes) - 1) + 1)]
    del session
    total = sum(int(np.count_nonzero(keep)) for keep in keeps)
    # filled in place, distance by distance: the same arrays as concatenating per-distance parts, at half the peak
    firsts, nexts = np.empty(total, dtype=codes.dtype), np.empty(total, dtype=codes.dtype)
    weights = np.empty(total, dtype=np.float32)
    begin = 0
    for distance, keep in enumerate(keeps, start=1):
        end = begin + int(np.count_nonzero(keep))
        np.compress(keep, codes[:-distance], out=firsts[begin:end])
        np.compress(keep, codes[distance:], out=nexts[begin:end])
        weights[begin:end] = np.float32(decay ** (distance - 1))
        begin = end
    return firsts, nexts, weights


def pair_matrix(codes: np.ndarray, starts: np.ndarray, window: int, decay: float, n_tracks: int) -> sp.csr_matrix:
    """raw(a, b) of one batch as a track x track CSR (COO -> CSR sums the repeats of a pair)."""
    firsts, nexts, weights = successor_pairs(codes, starts, window, decay)
    return sp.coo_matrix((weights, (firsts, nexts)), shape=(n_tracks, n_tracks)).tocsr()


def batch_listeners(users: np.ndarray, codes: np.ndarray, n_tracks: int) -> np.ndarray:
    """Distinct listeners per track code within a batch of whole users (adds up across such batches).

    ``np.unique`` of ``user * n_tracks + code`` keys, built and sorted in one int64 array (the expression
    form held three 8-byte temporaries a listen besides the sort's copy)."""
    keys = users.astype(np.int64)
    if len(keys):
        keys -= keys[0]
    keys *= n_tracks
    keys += codes
    keys = keys[sort_in_place_distinct(keys)]
    keys %= n_tracks
    return np.bincount(keys, minlength=n_tracks)


Part = list  # a track x track matrix as canonical CSR pieces, one per range of rows (``row_ranges``)


def row_ranges(n_rows: int, ranges: int = ROW_RANGES) -> np.ndarray:
    """Row cuts (first 0, last ``n_rows``) of about ``ranges`` equal ranges of rows."""
    return np.unique(np.linspace(0, n_rows, ranges + 1).astype(np.int64))


def split_rows(matrix: sp.csr_matrix, cuts: np.ndarray) -> Part:
    """The rows of each range ``cuts[i]:cuts[i + 1]`` as a CSR of its own, on views of ``matrix``'s arrays
    (they go once every piece is merged; copies would double a batch's pairs for a moment)."""
    pieces = []
    for first, last in zip(cuts[:-1], cuts[1:]):
        begin, end = matrix.indptr[first], matrix.indptr[last]
        piece = sp.csr_matrix((last - first, matrix.shape[1]), dtype=matrix.dtype)
        # set, not passed to the constructor: its check copies a view of a much larger array
        piece.indptr, piece.indices, piece.data = (matrix.indptr[first:last + 1] - begin,
                                                   matrix.indices[begin:end], matrix.data[begin:end])
        piece.has_canonical_format = matrix.has_canonical_format  # rows of a canonical matrix are
        pieces.append(piece)
    return pieces


def part_nnz(part: Part) -> int:
    return sum(piece.nnz for piece in part)


def push_merged(stack: list[Part], part: Part) -> None:
    """Push a batch matrix, summing the top of the stack while it is not much larger than what is below:
    a binary counter, so a pair is copied O(log batches) times rather than once per later batch.

    Summed a range of rows at a time, each range's addends dropped once added: a sum of whole matrices
    would hold both addends and the sum, up to twice every pair seen so far."""
    stack.append(part)
    while len(stack) > 1 and part_nnz(stack[-2]) <= 2 * part_nnz(stack[-1]):
        top, below = stack.pop(), stack[-1]
        for index in range(len(below)):
            below[index] = below[index] + top[index]
            top[index] = None


def transition_counts(starts: np.ndarray, codes: np.ndarray, cuts: np.ndarray, n_tracks: int, window: int,
                      decay: float) -> tuple[list[Part], np.ndarray]:
    """raw(a, b) over all sessions of listens sorted by (user, day, track_seq), as parts whose sum
    (``summed_rows``) is raw, and the row cuts of their pieces; ``starts`` from ``session_starts``, ``cuts``
    the batches of ``user_batches``.

    The parts are summed only a range of rows at a time, when they are scored: the whole sum would be a
    second copy of every pair next to the parts."""
    ranges = row_ranges(n_tracks)
    stack: list[Part] = [split_rows(sp.csr_matrix((n_tracks, n_tracks), dtype=np.float32), ranges)]
    for begin, end in zip(cuts[:-1], cuts[1:]):
        push_merged(stack, split_rows(pair_matrix(codes[begin:end], starts[begin:end], window, decay, n_tracks),
                                      ranges))
    return stack, ranges


def track_listeners(users: np.ndarray, codes: np.ndarray, cuts: np.ndarray, n_tracks: int) -> np.ndarray:
    """listeners(b): distinct users per track code, batch by batch (``cuts`` from ``user_batches``)."""
    listeners = np.zeros(n_tracks, dtype=np.int64)
    for begin, end in zip(cuts[:-1], cuts[1:]):
        listeners += batch_listeners(users[begin:end], codes[begin:end], n_tracks)
    return listeners


def summed_rows(pieces: list[sp.csr_matrix]) -> sp.csr_matrix:
    """The sum of one range's pieces of every part, added in the order a sum of the whole parts took (the
    last part first), so every float32 sum is the same as in the whole matrix."""
    raw = pieces[-1]
    for piece in reversed(pieces[:-1]):
        raw = raw + piece
    raw.sum_duplicates()
    return raw


def transition_scores(raw: sp.csr_matrix, listeners: np.ndarray, popularity_exponent: float,
                      min_support: float) -> sp.csr_matrix:
    """score(a, b) = raw / out(a) / listeners(b) ** p on the pairs with raw >= min_support (module docstring);
    the weak pairs are dropped first, so the float32 scores and their row numbers exist only for kept pairs."""
    out = np.asarray(raw.sum(axis=1), dtype=np.float64).ravel()  # row by row: the same for a block of rows
    counts = np.diff(raw.indptr)
    keep = raw.data >= min_support
    rows = np.repeat(np.arange(raw.shape[0], dtype=np.int32), counts)[keep]
    cols = raw.indices[keep]
    damping = np.power(np.maximum(listeners, 1).astype(np.float64), popularity_exponent)
    scores = (raw.data[keep] / (out[rows] * damping[cols])).astype(np.float32)
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=raw.shape[0]))]
    return sp.csr_matrix((scores, cols, indptr), shape=raw.shape)


def top_per_row(scores: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, score, rank) of each row's best ``n`` entries, best first, ties by lower col.

    One stable integer sort: key = row in the high 32 bits, the inverted float bits of the (non-negative)
    score in the low 32; a canonical CSR has cols ascending within a row, which the stable sort keeps for ties.
    Sorting keeps each row's block where it was, so a position's rank is its offset in the block.
    """
    scores.sum_duplicates()  # canonical: sorted cols, no repeats
    counts = np.diff(scores.indptr)
    key = np.repeat(np.arange(scores.shape[0], dtype=np.uint64), counts)
    key <<= np.uint64(32)
    key |= (np.uint32(0xFFFFFFFF) - scores.data.astype(np.float32).view(np.uint32)).astype(np.uint64)
    order = np.argsort(key, kind="stable")
    del key
    ranks = np.arange(len(order), dtype=np.int64) - np.repeat(scores.indptr[:-1].astype(np.int64), counts)
    top = ranks < n
    best = order[top]
    rows = np.repeat(np.arange(scores.shape[0], dtype=np.int64), counts)[top]
    return rows, scores.indices[best], scores.data[best], ranks[top] + 1


def ranked_pairs(parts: list[Part], ranges: np.ndarray, listeners: np.ndarray, popularity_exponent: float,
                 min_support: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``top_per_row(transition_scores(raw, ...))`` of raw = the sum of ``parts``, a range of rows at a time
    (rows never interact): scoring the whole matrix at once would need about 40 bytes a pair (row numbers,
    sort keys, order) on top of raw's 8. Each range's pieces are dropped once it is scored."""
    result = []
    for index, first in enumerate(ranges[:-1]):
        raw = summed_rows([part[index] for part in parts])
        for part in parts:
            part[index] = None
        scored = top_per_row(transition_scores(raw, listeners, popularity_exponent, min_support), n)
        result.append((scored[0] + first, *scored[1:]))
    if not result:
        return top_per_row(sp.csr_matrix((0, 0), dtype=np.float32), n)
    return tuple(np.concatenate(column) for column in zip(*result))  # type: ignore[return-value]


def played_next(train: pd.DataFrame | Listens, window: int, distance_decay: float, popularity_exponent: float,
                min_support: float, n: int, batch_listens: int = 20_000_000) -> pd.DataFrame:
    """The played-next table (``track_id``, ``next_track_id``, ``score``, ``rank``) of a train frame or of
    ``Listens`` (whose arrays this call may drop as it goes when it holds the only reference)."""
    listens = train if isinstance(train, Listens) else Listens.from_frame(train)
    del train
    users, days, tracks = listens.users, listens.days, listens.tracks
    order = listening_order(users, days, listens.seqs)
    del listens
    if order is not None:
        users, days, tracks = users[order], days[order], tracks[order]
        del order
    starts = session_starts(users, days)
    del days
    track_ids = unique_sorted(tracks)
    codes = encode(tracks, track_ids)
    del tracks
    cuts = user_batches(users, batch_listens)
    listeners = track_listeners(users, codes, cuts, len(track_ids))
    del users
    parts, ranges = transition_counts(starts, codes, cuts, len(track_ids), window, distance_decay)
    del starts, codes
    rows, cols, scores, ranks = ranked_pairs(parts, ranges, listeners, popularity_exponent, min_support, n)
    return ranked_table(track_ids[rows], track_ids[cols], scores, ranks, TRACK, NEXT_TRACK)
