"""DVC stage `popular`: the top-popular baseline from the train split."""
from pathlib import Path

import pandas as pd

from src.recsys.io import write_parquet
from src.recsys.popular import top_popular
from src.recsys.stage import stage


@stage("popular")
def main(params, logger):
    train = pd.read_parquet("data/split/train.parquet", columns=["user_id", "track_id"])
    items = pd.read_parquet("data/processed/items.parquet", columns=["track_id", "name"])
    top = top_popular(train, items, params["popular"]["n"])
    logger.info("read %d train events on %d tracks; wrote the top %d, first: %s",
                len(train), train["track_id"].nunique(), len(top), top.head(1).to_dict("records"))
    write_parquet(top, Path("data/recommendations/top_popular.parquet"))


if __name__ == "__main__":
    main()
