"""DVC stage `popular`: the top-popular baseline from the train split."""
import dataclasses
import logging

import pandas as pd

from src.recsys import paths
from src.recsys.columns import PAIR_COLUMNS, TRACK
from src.recsys.config import Config, integer, param
from src.recsys.io import write_parquet
from src.recsys.popularity import top_popular
from src.recsys.stage_runner import stage


@dataclasses.dataclass(frozen=True)
class PopularConfig(Config):
    n: int = param("popular.n", integer(1))


@stage("popular", PopularConfig)
def main(cfg: PopularConfig, logger: logging.Logger) -> None:
    train = pd.read_parquet(paths.TRAIN, columns=PAIR_COLUMNS)
    items = pd.read_parquet(paths.ITEMS, columns=[TRACK, "name"])
    top = top_popular(train, items, cfg.n)
    logger.info("read %d train events on %d tracks; wrote the top %d, first: %s",
                len(train), train[TRACK].nunique(), len(top), top.head(1).to_dict("records"))
    write_parquet(top, paths.TOP_POPULAR)


if __name__ == "__main__":
    main()
