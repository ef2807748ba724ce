"""ALS on Spark: MLlib's implicit-preference ALS with the ``als`` params, saved as the same ``AlsModel``.

MLlib's confidence is ``1 + alpha * r`` as implicit's, on the same binary matrix (a repeated listen is one
positive). Its ``regParam`` scales with each row's number of ratings (ALS-WR), implicit's does not: the
same value regularises more, which the NDCG comparison in docs/spark.md measures.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pyspark.ml.recommendation import ALS
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from src.recsys.als_model import AlsFitConfig, AlsModel
from src.recsys.arrays import encode
from src.recsys.columns import TRACK, USER
from src.recsys.interactions import InteractionMatrix


def factor_rows(factors, ids: np.ndarray, rank: int) -> np.ndarray:
    """MLlib's (id, features) rows as a float32 matrix in the order of ``ids`` (every id must be there)."""
    frame = factors.toPandas()
    rows = encode(frame["id"].to_numpy(np.int64), ids.astype(np.int64))
    if len(frame) != len(ids) or (rows < 0).any():
        raise RuntimeError("Spark ALS returned factors for other ids than the train matrix's")
    matrix = np.zeros((len(ids), rank), dtype=np.float32)
    matrix[rows] = np.stack(frame["features"].to_numpy()).astype(np.float32)
    return matrix


def fit_als(spark: SparkSession, train_path: Path | str, data: InteractionMatrix, cfg: AlsFitConfig,
            iterations: int) -> AlsModel:
    """Fit MLlib ALS on the (user, track) pairs of train.parquet; the model's rows follow ``data``'s ids."""
    pairs = spark.read.parquet(str(train_path)).select(USER, TRACK).distinct().withColumn("rating", F.lit(1.0))
    als = ALS(rank=cfg.factors, maxIter=iterations, regParam=cfg.regularization, alpha=cfg.alpha,
              implicitPrefs=True, seed=cfg.random_state, userCol=USER, itemCol=TRACK, ratingCol="rating",
              coldStartStrategy="drop")
    model = als.fit(pairs)
    return AlsModel(
        user_ids=data.user_ids, item_ids=data.item_ids,
        user_factors=factor_rows(model.userFactors, data.user_ids, cfg.factors),
        item_factors=factor_rows(model.itemFactors, data.item_ids, cfg.factors),
    )
