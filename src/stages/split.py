"""DVC stage `split`: time-based train/test split of the clean events."""
import dataclasses
import logging

import pandas as pd

from src.recsys import paths
from src.recsys.config import Config, day, integer, number, param
from src.recsys.io import write_json, write_parquet
from src.recsys.stage_runner import stage
from src.recsys.time_split import time_split


@dataclasses.dataclass(frozen=True)
class SplitConfig(Config):
    date: str = param("split.date", day())
    train_sample_frac: float = param("split.train_sample_frac", number(0.0, 1.0, low_open=True))
    seed: int = param("split.seed", integer(0))


@stage("split", SplitConfig)
def main(cfg: SplitConfig, logger: logging.Logger) -> None:
    events = pd.read_parquet(paths.EVENTS)
    train, test, report = time_split(events, cfg.date, cfg.train_sample_frac, cfg.seed)
    logger.info("split at %s: %s", cfg.date, report)
    write_parquet(train, paths.TRAIN)
    write_parquet(test, paths.TEST)
    write_json(report, paths.SPLIT_REPORT)


if __name__ == "__main__":
    main()
