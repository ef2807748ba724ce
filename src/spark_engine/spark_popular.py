"""The popular stage on Spark: ``popularity.top_popular`` (distinct listeners per track, ties by lower id)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from src.recsys.columns import RANK, TRACK, USER


def top_popular(spark: SparkSession, train_path: Path | str, items_path: Path | str, n: int) -> pd.DataFrame:
    train = spark.read.parquet(str(train_path)).select(USER, TRACK)
    listeners = train.distinct().groupBy(TRACK).agg(F.count("*").alias("listeners"))
    top = listeners.orderBy(F.desc("listeners"), F.asc(TRACK)).limit(n)
    names = spark.read.parquet(str(items_path)).select(TRACK, "name")
    top = top.join(names, TRACK, "left").orderBy(F.desc("listeners"), F.asc(TRACK)).toPandas()
    return pd.DataFrame({
        TRACK: top[TRACK].to_numpy(np.int32), "listeners": top["listeners"].to_numpy(np.int64),
        RANK: np.arange(1, len(top) + 1, dtype=np.int16), "name": top["name"].to_numpy(object),
    })
