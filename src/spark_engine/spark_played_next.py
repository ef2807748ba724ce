"""The played_next stage on Spark: ``sequential_rules.played_next``'s pairs, scores and top-n per track.

A session is one user's listens of one day ordered by ``track_seq`` (ties by the row's position in
train.parquet, as the local stable sort); a pair is the listen ``d`` steps later (``lead``), weighted by
``decay ** (d - 1)`` as float32, summed per pair into float32 ``raw`` (exact for the default decay 0.5,
whose weights and sums are binary fractions).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from src.recsys.columns import NEXT_TRACK, RANK, SCORE, STARTED_AT, TRACK, TRACK_SEQ, USER
from src.recsys.interactions import ranked_table

from .spark_session import ROW, day_of, nanos_of, read_ordered


def played_next(spark: SparkSession, train_path: Path | str, window: int, distance_decay: float,
                popularity_exponent: float, min_support: float, n: int) -> pd.DataFrame:
    train = read_ordered(spark, train_path, [USER, TRACK, TRACK_SEQ, STARTED_AT])
    train = train.withColumn(STARTED_AT, nanos_of(train, STARTED_AT)).withColumn("day", day_of(STARTED_AT))
    session = Window.partitionBy(USER, "day").orderBy(TRACK_SEQ, ROW)
    leads = train.select(TRACK, *[F.lead(TRACK, d).over(session).alias(f"next_{d}") for d in range(1, window + 1)])
    steps = F.array(*[F.struct(F.col(f"next_{d}").alias("next"),
                               F.lit(float(np.float32(distance_decay ** (d - 1)))).alias("weight"))
                      for d in range(1, window + 1)])
    pairs = (leads.select(TRACK, F.explode(steps).alias("step"))
             .select(TRACK, F.col("step.next").alias(NEXT_TRACK), F.col("step.weight").alias("weight"))
             .filter(F.col(NEXT_TRACK).isNotNull() & (F.col(NEXT_TRACK) != F.col(TRACK))))
    raw = pairs.groupBy(TRACK, NEXT_TRACK).agg(F.sum("weight").cast("float").alias("raw"))
    out = raw.groupBy(TRACK).agg(F.sum(F.col("raw").cast("double")).cast("float").cast("double").alias("out"))
    listeners = train.select(USER, TRACK).distinct().groupBy(TRACK).agg(F.count("*").alias("listeners"))
    damping = F.pow(F.greatest(F.col("listeners"), F.lit(1)).cast("double"), F.lit(float(popularity_exponent)))
    scored = (raw.filter(F.col("raw") >= F.lit(float(min_support)))
              .join(out, TRACK)
              .join(listeners.withColumnRenamed(TRACK, NEXT_TRACK), NEXT_TRACK)
              .withColumn(SCORE, (F.col("raw").cast("double") / (F.col("out") * damping)).cast("float")))
    best = Window.partitionBy(TRACK).orderBy(F.desc(SCORE), F.asc(NEXT_TRACK))
    top = (scored.withColumn(RANK, F.row_number().over(best)).filter(F.col(RANK) <= n)
           .orderBy(TRACK, RANK).select(TRACK, NEXT_TRACK, SCORE, RANK).toPandas())
    return ranked_table(top[TRACK].to_numpy(), top[NEXT_TRACK].to_numpy(), top[SCORE].to_numpy(np.float32),
                        top[RANK].to_numpy(), TRACK, NEXT_TRACK)
