"""The played_next stage on Spark: ``sequential_rules.played_next``'s pairs, scores and top-n per track.

A session is one user's listens of one day ordered by ``track_seq`` (ties by the row's position in
train.parquet, as the local stable sort). Spark moves each user's listens to one partition, sorted into
sessions; a Python worker then pairs them a chunk of whole users at a time with the local engine's numpy
functions (``pair_matrix``, ``batch_listeners``), emitting each chunk's summed pairs and listener counts.
Pairing row by row in Spark SQL (a ``lead`` per distance, exploded) made 5 rows a listen and took 25x the
local engine's time; a chunk's sums are a fraction of its pairs. Spark adds the chunks' sums up (float32
``raw``, exact for the default decay 0.5, whose weights and sums are binary fractions), scores and ranks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from src.recsys.arrays import encode, unique_sorted
from src.recsys.columns import NEXT_TRACK, RANK, SCORE, STARTED_AT, TRACK, TRACK_SEQ, USER
from src.recsys.interactions import ranked_table
from src.recsys.sequential_rules import (batch_listeners, pair_matrix, session_starts, top_per_row,
                                        transition_scores)

from .spark_session import ROW, day_of, nanos_of, read_ordered

WORKER_ROWS = 2_000_000  # listens (whole users) or pairs (whole tracks) a Python worker holds: ~200 MB of arrays
BATCH_ROWS = 100_000  # rows per Arrow batch a worker sends back (a chunk's sums are millions of rows)
LISTENERS = "listeners"
CHUNK_SCHEMA = pa.schema([(TRACK, pa.int32()), (NEXT_TRACK, pa.int32()), ("raw", pa.float32()),
                          (LISTENERS, pa.int32())])  # a pair row (no listeners) or a listeners row (no next)
RANKED_SCHEMA = pa.schema([(TRACK, pa.int32()), (NEXT_TRACK, pa.int32()), (SCORE, pa.float32()), (RANK, pa.int16())])


def chunk_sums(users: np.ndarray, days: np.ndarray, tracks: np.ndarray, window: int, decay: float) -> pa.RecordBatch:
    """One chunk of whole users' listens in session order: its summed pairs (track, next, raw) and its
    distinct listeners per track (track, listeners), as the rows of ``CHUNK_SCHEMA``."""
    track_ids = unique_sorted(tracks)
    codes = encode(tracks, track_ids)
    pairs = pair_matrix(codes, session_starts(users, days), window, decay, len(track_ids)).tocoo()
    listeners = batch_listeners(users, codes, len(track_ids))
    heard = np.flatnonzero(listeners)
    is_pair = np.r_[np.ones(pairs.nnz, bool), np.zeros(len(heard), bool)]
    return pa.RecordBatch.from_arrays([
        pa.array(np.r_[track_ids[pairs.row], track_ids[heard]].astype(np.int32)),
        pa.array(np.r_[track_ids[pairs.col], track_ids[heard]].astype(np.int32), mask=~is_pair),
        pa.array(np.r_[pairs.data, np.zeros(len(heard), np.float32)], mask=~is_pair),
        pa.array(np.r_[np.zeros(pairs.nnz, np.int32), listeners[heard]].astype(np.int32), mask=is_pair),
    ], schema=CHUNK_SCHEMA)


def whole_key_chunks(batches: Iterator[pa.RecordBatch], key: str, size: int) -> Iterator[pa.Table]:
    """Tables of about ``size`` rows cut where ``key`` changes, from batches sorted by ``key``: a key's rows
    (a user's listens, a track's pairs) are never split across chunks."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        if rows < size:
            continue
        table = pa.Table.from_batches(pending)
        keys = table[key].to_numpy()
        last_key_start = int(np.searchsorted(keys, keys[-1]))
        if last_key_start == 0:  # one key so far: wait for its end
            continue
        yield table.slice(0, last_key_start)
        pending = table.slice(last_key_start).to_batches()
        rows = table.num_rows - last_key_start
    if rows:
        yield pa.Table.from_batches(pending)


def ranked_chunk(pairs: pa.Table, listener_ids: np.ndarray, listeners: np.ndarray, popularity_exponent: float,
                 min_support: float, n: int) -> pa.RecordBatch:
    """The top ``n`` next tracks of each track of a chunk of whole tracks' summed pairs, scored by the local
    ``transition_scores`` and ``top_per_row`` (``listeners`` aligned with the sorted ``listener_ids``)."""
    firsts, nexts = pairs[TRACK].to_numpy(), pairs[NEXT_TRACK].to_numpy()
    first_ids = unique_sorted(firsts)
    raw = sp.coo_matrix((pairs["raw"].to_numpy(), (encode(firsts, first_ids), encode(nexts, listener_ids))),
                        shape=(len(first_ids), len(listener_ids))).tocsr()  # sums a pair's chunk sums
    rows, cols, scores, ranks = top_per_row(transition_scores(raw, listeners, popularity_exponent, min_support), n)
    return pa.RecordBatch.from_arrays([pa.array(first_ids[rows].astype(np.int32)),
                                       pa.array(listener_ids[cols].astype(np.int32)),
                                       pa.array(scores.astype(np.float32)), pa.array(ranks.astype(np.int16))],
                                      schema=RANKED_SCHEMA)  # the output's compact types: 14 bytes a row


def played_next(spark: SparkSession, train_path: Path | str, window: int, distance_decay: float,
                popularity_exponent: float, min_support: float, n: int, worker_rows: int = WORKER_ROWS
                ) -> pd.DataFrame:
    train = read_ordered(spark, train_path, [USER, TRACK, TRACK_SEQ, STARTED_AT])
    train = train.withColumn(STARTED_AT, nanos_of(train, STARTED_AT)).select(USER, day_of(STARTED_AT).alias("day"),
                                                                             TRACK_SEQ, ROW, TRACK)
    sessions = train.repartition(USER).sortWithinPartitions(USER, "day", TRACK_SEQ, ROW)

    def user_sums(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for chunk in whole_key_chunks(batches, USER, worker_rows):
            yield from sliced(chunk_sums(chunk[USER].to_numpy(), chunk["day"].to_numpy(), chunk[TRACK].to_numpy(),
                                         window, distance_decay))

    # on disk, not in the heap: at the real data's size the cached sums outgrew a 4g heap (OutOfMemoryError)
    chunks = sessions.mapInArrow(user_sums, ddl(CHUNK_SCHEMA)).persist(StorageLevel.DISK_ONLY)
    counted = (chunks.filter(F.col(NEXT_TRACK).isNull()).groupBy(TRACK).agg(F.sum(LISTENERS).alias(LISTENERS))
               .orderBy(TRACK).toPandas())
    listener_ids, listeners = counted[TRACK].to_numpy(np.int64), counted[LISTENERS].to_numpy(np.int64)

    def ranked(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for chunk in whole_key_chunks(batches, TRACK, worker_rows):
            yield from sliced(ranked_chunk(chunk, listener_ids, listeners, popularity_exponent, min_support, n))

    pairs = (chunks.filter(F.col(NEXT_TRACK).isNotNull()).select(TRACK, NEXT_TRACK, "raw")
             .repartition(TRACK).sortWithinPartitions(TRACK))
    # sorted here, not by Spark: an orderBy would run the ranking twice (once to sample its ranges)
    top = pairs.mapInArrow(ranked, ddl(RANKED_SCHEMA)).toArrow()
    chunks.unpersist()
    order = np.lexsort((top[RANK].to_numpy(), top[TRACK].to_numpy()))
    return ranked_table(*(top[name].to_numpy()[order] for name in (TRACK, NEXT_TRACK, SCORE, RANK)), TRACK, NEXT_TRACK)


def sliced(batch: pa.RecordBatch, rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """``batch`` in slices of at most ``rows`` (views, no copy): the JVM takes a worker's batches one at a time."""
    for begin in range(0, batch.num_rows, rows):
        yield batch.slice(begin, rows)


def ddl(schema: pa.Schema) -> str:
    """Spark's DDL string of an Arrow schema of integer and float32 columns (``mapInArrow``'s result type)."""
    names = {pa.int64(): "long", pa.int32(): "int", pa.int16(): "smallint", pa.float32(): "float"}
    return ", ".join(f"{field.name} {names[field.type]}" for field in schema)
