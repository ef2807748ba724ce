"""The EDA's event aggregates on Spark: listens per user and per day, the listening period and the sequence
counts of ``sequences.count_pairs``. The item tables (one row per track) stay on the driver, as locally."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from src.recsys.columns import EVENT_COLUMNS, STARTED_AT, TRACK, TRACK_SEQ, USER
from src.recsys.eda_stats import EventAggregates
from src.recsys.sequences import sequence_summary, track_features

from .spark_session import ROW, day_of, nanos_of, read_ordered


def event_aggregates(spark: SparkSession, events_path: Path | str, items: pd.DataFrame) -> EventAggregates:
    events = read_ordered(spark, events_path, EVENT_COLUMNS)
    events = events.withColumn(STARTED_AT, nanos_of(events, STARTED_AT)).withColumn("day", day_of(STARTED_AT)).cache()
    users = events.groupBy(USER).count().orderBy(USER).toPandas()
    days = events.groupBy("day").count().orderBy("day").toPandas()
    period = events.agg(F.count("*").alias("n"), F.min(STARTED_AT).alias("first"),
                        F.max(STARTED_AT).alias("last")).first()

    track_ids = items[TRACK].to_numpy()
    artist, album, successor = track_features(track_ids, items["albums"], items["artists"])
    features = spark.createDataFrame(pd.DataFrame({TRACK: track_ids.astype(np.int64), "artist": artist.astype(np.int64),
                                                   "album": album.astype(np.int64),
                                                   "successor": successor.astype(np.int64)}))
    session = Window.partitionBy(USER, "day").orderBy(TRACK_SEQ, ROW)
    listens = events.join(F.broadcast(features), TRACK, "left").fillna(-1, ["artist", "album", "successor"])
    previous = {name: F.lag(name).over(session) for name in (TRACK, "artist", "album", "successor")}
    pair = previous[TRACK].isNotNull()
    flags = listens.select(
        pair.alias("pairs"),
        (pair & (F.col("artist") == previous["artist"]) & (F.col("artist") >= 0)).alias("same_artist"),
        (pair & (F.col("album") == previous["album"]) & (F.col("album") >= 0)).alias("same_album"),
        (pair & (previous["successor"] == F.col(TRACK))).alias("album_order"),
    )
    counts = flags.agg(*[F.sum(F.col(name).cast("long")).alias(name) for name in flags.columns]).first()
    events.unpersist()
    return EventAggregates(
        user_counts=users["count"].to_numpy(np.int64),
        days=days["day"].to_numpy(np.int64).astype("datetime64[D]"), day_counts=days["count"].to_numpy(np.int64),
        events=int(period["n"]), first=np.datetime64(period["first"], "ns"), last=np.datetime64(period["last"], "ns"),
        sequences=sequence_summary(int(period["n"]), {name: int(counts[name] or 0) for name in flags.columns}),
    )
