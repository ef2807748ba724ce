"""The clean stage on Spark: the same rules, counts and outputs as ``src/recsys/cleaning.py``.

The events (the big table) and the track rules run as Spark jobs. What the downstream stages read is one
parquet file per table: the clean events are written by the executors and streamed into that file
(``spark_output.write_sorted``); the kept tracks (1M rows at full size) are collected on the driver in the
input order, and the items and the catalog tables are assembled there with the local functions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from src.recsys.arrays import lookup_sorted
from src.recsys.catalogs import items_table, processed_tables
from src.recsys.cleaning import EVENTS_SCHEMA, INT32_MAX, LIST_COLUMNS
from src.recsys.columns import EVENT_COLUMNS, STARTED_AT, TRACK, TRACK_SEQ, USER
from src.recsys.validation import validate_raw_dir, validate_values

from .spark_output import write_sorted
from .spark_session import ROW, nanos_of, read_ordered

ID_RANGES = ((USER, INT32_MAX), (TRACK, INT32_MAX), (TRACK_SEQ, int(np.iinfo(np.int16).max)))


def check_ranges(frame: DataFrame, path: Path, ranges) -> None:
    """The local readers' value checks (ids in 0..top), on Spark aggregates, with the same messages."""
    bounds = frame.agg(*[F.min(c).alias(f"min_{c}") for c, _ in ranges],
                       *[F.max(c).alias(f"max_{c}") for c, _ in ranges]).first()
    for column, top in ranges:
        low, high = bounds[f"min_{column}"], bounds[f"max_{column}"]
        if low is not None:
            validate_values(path, column, low >= 0 and high <= top, f"ids in 0..{top}", f"values from {low} to {high}")


def unknown_rows(tracks: DataFrame, column: str, allowed: DataFrame) -> DataFrame:
    """``_row`` of the tracks whose ``column`` list holds an id outside ``allowed`` (one column ``id``)."""
    values = tracks.select(ROW, F.explode(column).alias("id"))
    return values.join(F.broadcast(allowed), "id", "left_anti").select(ROW).distinct()


def clean_tracks(spark: SparkSession, raw_dir: Path, catalog: pd.DataFrame) -> tuple[pa.Table, dict[str, int]]:
    """The track rules of ``cleaning.clean_tracks`` on Spark; the kept tracks come back in file order."""
    path = raw_dir / "tracks.parquet"
    tracks = read_ordered(spark, path, [TRACK, *LIST_COLUMNS])
    check_ranges(tracks, path, ((TRACK, INT32_MAX),))
    ids = {kind: spark.createDataFrame(pd.DataFrame({"id": np.unique(catalog.loc[catalog["type"] == kind, "id"]
                                                                     .to_numpy(np.int64))}))
           for kind in ("genre", "album", "artist")}
    report = {"tracks_in": tracks.count()}
    first = tracks.groupBy(TRACK).agg(F.min(ROW).alias(ROW))
    tracks = tracks.join(first, [TRACK, ROW], "left_semi").cache()
    report["tracks_removed_duplicate_id"] = report["tracks_in"] - tracks.count()
    empty = F.lit(False)
    for column in LIST_COLUMNS:
        empty = empty | (F.coalesce(F.size(column), F.lit(0)) <= 0)
    report["tracks_removed_empty_list"] = tracks.filter(empty).count()
    tracks = tracks.filter(~empty)
    unknown_genre = unknown_rows(tracks, "genres", ids["genre"])
    report["tracks_removed_unknown_genre"] = unknown_genre.count()
    tracks = tracks.join(unknown_genre, ROW, "left_anti").cache()
    for column, kind in (("albums", "album"), ("artists", "artist")):
        report[f"tracks_with_unknown_{kind}"] = unknown_rows(tracks, column, ids[kind]).count()
        values = tracks.select(F.explode(column).alias("id")).distinct()
        report[f"unknown_{kind}_ids"] = values.join(F.broadcast(ids[kind]), "id", "left_anti").count()
    kept = tracks.orderBy(ROW).select(TRACK, *LIST_COLUMNS).toArrow()
    report["tracks_out"] = kept.num_rows
    tracks.unpersist()
    return kept, report


BROADCAST_ROWS = 5_000_000  # a table of ids joined by broadcast (kept in every task) up to this many rows


def in_order_anti_join(frame: DataFrame, drop: DataFrame, key: str, rows: int) -> tuple[DataFrame, bool]:
    """``frame`` without the rows whose ``key`` is in ``drop`` (``rows`` of them), and whether ``frame``'s
    order survives: a broadcast join streams each partition as it is, a shuffle join (for a large ``drop``)
    does not."""
    if rows <= BROADCAST_ROWS:
        return frame.join(F.broadcast(drop), key, "left_anti"), True
    return frame.join(drop, key, "left_anti"), False


def duplicate_rows(events: DataFrame) -> tuple[DataFrame, int]:
    """``_row`` of every copy of an event but its first (an event is its four columns), and how many.

    Only a 64-bit hash of each event and its row move between tasks (not the events, as a window over the
    four columns would move them); the events sharing a hash are few (copies and hash collisions), and
    only they are compared column by column."""
    hashed = events.withColumn("hash", F.xxhash64(*EVENT_COLUMNS))
    shared = hashed.groupBy("hash").count().filter(F.col("count") > 1).select("hash").cache()
    candidates = shared.count()
    if candidates == 0:
        shared.unpersist()
        return events.sparkSession.createDataFrame([], f"{ROW} long"), 0
    same_row = Window.partitionBy(*EVENT_COLUMNS).orderBy(ROW)
    near = hashed.join(F.broadcast(shared) if candidates <= BROADCAST_ROWS else shared, "hash", "left_semi")
    copies = near.withColumn("copy", F.row_number().over(same_row)).filter(F.col("copy") > 1).select(ROW).cache()
    count = copies.count()
    shared.unpersist()
    return copies, count


def clean_events(spark: SparkSession, raw_dir: Path, kept_track_ids: np.ndarray, min_user_events: int,
                 events_path: Path) -> tuple[dict[str, int], pd.DataFrame]:
    """The event rules of ``cleaning.clean_events`` on Spark: the kept events in file order written to
    ``events_path`` (the local engine's file), the report and the listens per track (``track_id``, ``listens``).

    The events keep the file's order from the read to the write (filters and broadcast joins), so the write
    needs no global sort of every listen."""
    path = raw_dir / "interactions.parquet"
    raw = read_ordered(spark, path, EVENT_COLUMNS)
    raw = raw.withColumn(STARTED_AT, nanos_of(raw, STARTED_AT))
    has_null = F.lit(False)
    for column in EVENT_COLUMNS:
        has_null = has_null | F.col(column).isNull()
    events = raw.filter(~has_null)
    check_ranges(events, path, ID_RANGES)
    counts = raw.agg(F.count("*").alias("events_in"), F.sum(has_null.cast("long")).alias("null")).first()
    copies, duplicates = duplicate_rows(events)
    events, in_order = in_order_anti_join(events, copies, ROW, duplicates)
    known = spark.createDataFrame(pd.DataFrame({TRACK: kept_track_ids.astype(np.int64)})) \
        .withColumn("known", F.lit(True))
    events = (events.join(F.broadcast(known), TRACK, "left")
              .withColumn("known", F.coalesce("known", F.lit(False))))
    per_user = events.groupBy(USER).agg(F.count("*").alias("events"),
                                        F.sum(F.col("known").cast("long")).alias("n")).cache()
    enough = F.col("n") >= min_user_events
    users = per_user.agg(F.count("*").alias("users_in"),
                         F.sum(F.col("events") - F.col("n")).alias("unknown"),
                         F.sum((~enough & (F.col("n") > 0)).cast("long")).alias("few_users"),
                         F.sum(F.when(~enough, F.col("n")).otherwise(0)).alias("few_events"),
                         F.sum(enough.cast("long")).alias("users_out"),
                         F.sum(F.when(enough, F.col("n")).otherwise(0)).alias("events_out")).first()
    report = {
        "events_in": int(counts["events_in"]), "users_in": int(users["users_in"]),
        "events_removed_null": int(counts["null"] or 0),
        "events_removed_duplicate": duplicates,
        "events_removed_unknown_track": int(users["unknown"] or 0),
        "users_removed_few_events": int(users["few_users"] or 0),
        "events_removed_few_user_events": int(users["few_events"] or 0),
        "events_out": int(users["events_out"] or 0),
        "users_out": int(users["users_out"] or 0),
    }
    few_users = per_user.filter(~enough).select(USER)
    kept, users_in_order = in_order_anti_join(events.filter("known"), few_users, USER,
                                              report["users_in"] - report["users_out"])
    listens = kept.groupBy(TRACK).agg(F.count("*").alias("listens")).toPandas()
    write_sorted(kept, ROW, events_path, EVENTS_SCHEMA, in_order=in_order and users_in_order)
    copies.unpersist()
    per_user.unpersist()
    return report, listens


def listens_lookup(listens: pd.DataFrame):
    """``listens_of(track_ids)`` for ``catalogs.items_table`` from Spark's (``track_id``, ``listens``) counts."""
    listens = listens.sort_values(TRACK)
    return lambda track_ids: lookup_sorted(listens[TRACK].to_numpy(np.int64), listens["listens"].to_numpy(np.int64),
                                           track_ids.astype(np.int64), 0)


def clean(spark: SparkSession, raw_dir: Path, min_user_events: int, events_path: Path
          ) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """What the clean stage writes: the clean events into ``events_path``; the other processed tables by name
    and data_quality's report are returned."""
    raw_dir = Path(raw_dir)
    validate_raw_dir(raw_dir)
    catalog = pd.read_parquet(raw_dir / "catalog_names.parquet", columns=["id", "type", "name"])
    tracks, track_report = clean_tracks(spark, raw_dir, catalog)
    event_report, listens = clean_events(spark, raw_dir, tracks[TRACK].to_numpy(), min_user_events, events_path)
    outputs, item_counts = processed_tables(tracks, catalog, items_table(tracks, catalog, listens_lookup(listens)))
    return outputs, {**track_report, **item_counts, **event_report}
