"""DVC stage `played_next`: for every train track, the tracks users played after it the same day."""
import dataclasses
import logging

import pyarrow.parquet as pq

from src.recsys import paths
from src.recsys.columns import TRACK
from src.recsys.config import Config, integer, number, param, section
from src.recsys.io import timed, write_parquet
from src.recsys.sequential_rules import Listens, played_next
from src.recsys.stage_runner import stage
from src.spark_engine.spark_settings import EngineConfig


@dataclasses.dataclass(frozen=True)
class PlayedNextConfig(Config):
    window: int = param("played_next.window", integer(1))
    distance_decay: float = param("played_next.distance_decay", number(0.0, 1.0, low_open=True))
    popularity_exponent: float = param("played_next.popularity_exponent", number(0.0))
    min_support: float = param("played_next.min_support", number(0.0))
    n: int = param("played_next.n", integer(1))
    batch_listens: int = param("played_next.batch_listens", integer(1))  # the local engine's batches
    engine: EngineConfig = section(EngineConfig)


@stage("played_next", PlayedNextConfig)
def main(cfg: PlayedNextConfig, logger: logging.Logger) -> None:
    if cfg.engine.on_spark:
        from src.spark_engine import spark_played_next
        from src.spark_engine.spark_session import spark_session

        with spark_session(cfg.engine.spark, "played_next") as spark, timed(logger, "played-next pairs on Spark"):
            frame = spark_played_next.played_next(spark, paths.TRAIN, cfg.window, cfg.distance_decay,
                                                  cfg.popularity_exponent, cfg.min_support, cfg.n)
    else:
        with timed(logger, f"played-next pairs over {pq.read_metadata(paths.TRAIN).num_rows} listens"):
            # read inline: played_next then holds the only reference and frees each column once used
            frame = played_next(Listens.read(paths.TRAIN), cfg.window, cfg.distance_decay, cfg.popularity_exponent, cfg.min_support,
                                cfg.n, cfg.batch_listens)
    logger.info("wrote %d played-next pairs for %d tracks", len(frame), frame[TRACK].nunique())
    write_parquet(frame, paths.PLAYED_NEXT)


if __name__ == "__main__":
    main()
