"""DVC stage `split`: time-based train/test split of the clean events."""
import dataclasses
import logging

from src.recsys import paths
from src.recsys.config import Config, day, integer, number, param, section
from src.recsys.io import write_json
from src.recsys.stage_runner import stage
from src.recsys.time_split import split_file
from src.spark_engine.spark_settings import EngineConfig


@dataclasses.dataclass(frozen=True)
class SplitConfig(Config):
    date: str = param("split.date", day())
    train_sample_frac: float = param("split.train_sample_frac", number(0.0, 1.0, low_open=True))
    seed: int = param("split.seed", integer(0))
    engine: EngineConfig = section(EngineConfig)


@stage("split", SplitConfig)
def main(cfg: SplitConfig, logger: logging.Logger) -> None:
    if cfg.engine.on_spark:
        from src.spark_engine import spark_split
        from src.spark_engine.spark_session import spark_session

        with spark_session(cfg.engine.spark, "split") as spark:
            report = spark_split.time_split(spark, paths.EVENTS, cfg.date, cfg.train_sample_frac, cfg.seed,
                                            paths.TRAIN, paths.TEST)
    else:
        report = split_file(paths.EVENTS, paths.TRAIN, paths.TEST, cfg.date, cfg.train_sample_frac, cfg.seed)
    logger.info("split at %s: %s", cfg.date, report)
    write_json(report, paths.SPLIT_REPORT)


if __name__ == "__main__":
    main()
