"""DVC stage `als`: fit ALS on train (as many iterations as `als_tune` chose) and recommend the top-n for every
train user."""
import dataclasses
import json
import logging

import pandas as pd

from src.recsys import paths
from src.recsys.als_model import AlsFitConfig, fit_als
from src.recsys.columns import PAIR_COLUMNS
from src.recsys.config import Config, boolean, integer, param, section, text
from src.recsys.interactions import InteractionMatrix, ranked_frame
from src.recsys.io import progress_logger, timed, write_parquet
from src.recsys.stage_runner import stage
from src.recsys.topk import top_k_scores
from src.spark_engine.spark_settings import ENGINES, EngineSwitch, SparkSettings


@dataclasses.dataclass(frozen=True)
class AlsEngineConfig(EngineSwitch):
    """ALS's own switch (``als.engine``): Spark's ALS is not bit-equal to implicit's, so it is chosen apart
    from the data stages, whose Spark outputs equal the local ones (docs/spark.md)."""

    name: str = param("als.engine", text(ENGINES))
    spark: SparkSettings = section(SparkSettings)


@dataclasses.dataclass(frozen=True)
class AlsConfig(Config):
    fit: AlsFitConfig = section(AlsFitConfig)
    n: int = param("als.n", integer(1))
    filter_seen: bool = param("als.filter_seen", boolean())
    engine: AlsEngineConfig = section(AlsEngineConfig)


@stage("als", AlsConfig)
def main(cfg: AlsConfig, logger: logging.Logger) -> None:
    iterations = json.loads(paths.ALS_TUNE.read_text())["iterations"]
    data = InteractionMatrix.from_events(pd.read_parquet(paths.TRAIN, columns=PAIR_COLUMNS))
    logger.info("train matrix: %d users x %d tracks, %d listens", *data.matrix.shape, data.matrix.nnz)
    with timed(logger, f"fitting ALS ({cfg.fit.factors} factors, {iterations} iterations as `als_tune` chose) "
                       f"on the {cfg.engine.name} engine"):
        if cfg.engine.on_spark:
            from src.spark_engine import spark_als
            from src.spark_engine.spark_session import spark_session

            with spark_session(cfg.engine.spark, "als") as spark:
                model = spark_als.fit_als(spark, paths.TRAIN, data, cfg.fit, iterations)
        else:
            model = fit_als(data, cfg.fit, iterations)
    model.save(paths.ALS_MODEL)
    with timed(logger, f"top-{cfg.n} for {len(model.user_ids)} users"):
        indices, scores = top_k_scores(
            model.user_factors, model.item_factors, cfg.n,
            exclude=data.matrix if cfg.filter_seen else None,
            progress=progress_logger(logger, "recommending"),
        )
    recs = ranked_frame(model.user_ids, model.item_ids, indices, scores)
    logger.info("wrote %d recommendations for %d users", len(recs), recs["user_id"].nunique())
    write_parquet(recs, paths.PERSONAL_ALS)


if __name__ == "__main__":
    main()
