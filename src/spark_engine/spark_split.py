"""The split stage on Spark: ``time_split.time_split``'s rows, order, sampling and report."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from src.recsys.columns import EVENT_COLUMNS, STARTED_AT, TRACK, USER
from src.recsys.streaming import pandas_schema
from src.recsys.time_split import check_report, empty_side

from .spark_output import write_sorted
from .spark_session import ROW, nanos_of, read_ordered


def sampled_rows(spark: SparkSession, train: DataFrame, train_sample_frac: float, seed: int) -> DataFrame:
    """``_row`` of the train rows the local engine keeps: its i-th train row draws numpy's i-th uniform of
    ``default_rng(seed)``; each partition jumps its generator to its first index (PCG64 ``advance``)."""
    def keep(partition):
        rows = list(partition)
        if rows:
            generator = np.random.Generator(np.random.PCG64(seed))
            generator.bit_generator.advance(rows[0][1])
            draws = generator.random(len(rows))
            yield from ((row[0][0],) for row, draw in zip(rows, draws) if draw < train_sample_frac)

    indexed = train.select(ROW).orderBy(ROW).rdd.zipWithIndex()
    schema = T.StructType([T.StructField(ROW, T.LongType())])
    return spark.createDataFrame(indexed.mapPartitions(keep), schema)


def time_split(spark: SparkSession, events_path: Path | str, split_date: str, train_sample_frac: float, seed: int,
               train_path: Path | str, test_path: Path | str) -> dict[str, int]:
    """Train and test written to their paths as ``time_split.split_file`` writes them; the report."""
    events = read_ordered(spark, events_path, EVENT_COLUMNS)
    events = events.withColumn(STARTED_AT, nanos_of(events, STARTED_AT))
    cut = pd.Timestamp(split_date).value
    events = events.withColumn("test", F.col(STARTED_AT) >= F.lit(cut)).cache()
    sides = events.agg(F.count("*").alias("n"), F.sum(F.col("test").cast("long")).alias("test"),
                       F.min(STARTED_AT).alias("first"), F.max(STARTED_AT).alias("last")).first()
    if sides["n"] and sides["test"] in (0, sides["n"]):
        raise empty_side(split_date, sides["test"] == sides["n"], np.datetime64(sides["first"], "ns"),
                         np.datetime64(sides["last"], "ns"))
    train = events.filter(~F.col("test"))
    if train_sample_frac < 1.0:
        train = train.join(sampled_rows(spark, train, train_sample_frac, seed), ROW, "left_semi")
    train = train.cache()
    test = events.filter(F.col("test"))
    train_tracks = train.select(TRACK).distinct().withColumn("known", F.lit(True))
    test = test.join(F.broadcast(train_tracks), TRACK, "left").withColumn("known", F.coalesce("known", F.lit(False))).cache()
    train_users = train.select(USER).distinct()
    test_users = test.filter("known").select(USER).distinct()
    counts = train.agg(F.count("*").alias("events"), F.countDistinct(USER).alias("users"),
                       F.countDistinct(TRACK).alias("tracks")).first()
    test_counts = test.agg(F.count("*").alias("events"), F.sum(F.col("known").cast("long")).alias("known")).first()
    report = {
        "train_events": int(counts["events"]),
        "train_users": int(counts["users"]),
        "train_tracks": int(counts["tracks"]),
        "test_events_before_filter": int(test_counts["events"]),
        "test_events_dropped_unknown_track": int(test_counts["events"] - (test_counts["known"] or 0)),
        "test_events": int(test_counts["known"] or 0),
        "test_users": test_users.count(),
        "cold_test_users": test_users.join(train_users, USER, "left_anti").count(),
    }
    check_report(report, split_date, train_sample_frac)
    schema = pandas_schema(pq.read_schema(events_path))
    # straight from the file (filtered; the test side joins a broadcast table): in order unless sampled
    write_sorted(train, ROW, train_path, schema, in_order=train_sample_frac >= 1.0)
    write_sorted(test.filter("known"), ROW, test_path, schema, in_order=True)
    for frame in (events, train, test):
        frame.unpersist()
    return report
