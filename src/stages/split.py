"""DVC stage `split`: time-based train/test split of the clean events."""
import logging

import pandas as pd

from src.recsys import paths
from src.recsys.config import SplitConfig
from src.recsys.io import write_json, write_parquet
from src.recsys.split import time_split
from src.recsys.stage import stage


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
