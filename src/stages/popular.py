"""DVC stage `popular`: the top-popular baseline from the train split."""
import dataclasses
import logging

import pandas as pd

from src.recsys import paths
from src.recsys.columns import TRACK
from src.recsys.config import Config, integer, param, section
from src.recsys.io import write_parquet
from src.recsys.popularity import top_popular_of_file
from src.recsys.stage_runner import stage
from src.spark_engine.spark_settings import EngineConfig


@dataclasses.dataclass(frozen=True)
class PopularConfig(Config):
    n: int = param("popular.n", integer(1))
    engine: EngineConfig = section(EngineConfig)


@stage("popular", PopularConfig)
def main(cfg: PopularConfig, logger: logging.Logger) -> None:
    if cfg.engine.on_spark:
        from src.spark_engine import spark_popular
        from src.spark_engine.spark_session import spark_session

        with spark_session(cfg.engine.spark, "popular") as spark:
            top = spark_popular.top_popular(spark, paths.TRAIN, paths.ITEMS, cfg.n)
        logger.info("wrote the top %d on Spark, first: %s", len(top), top.head(1).to_dict("records"))
    else:
        top = top_popular_of_file(paths.TRAIN, pd.read_parquet(paths.ITEMS, columns=[TRACK, "name"]), cfg.n)
        logger.info("wrote the top %d, first: %s", len(top), top.head(1).to_dict("records"))
    write_parquet(top, paths.TOP_POPULAR)


if __name__ == "__main__":
    main()
