"""DVC stage `serving`: the bundle the recommendation service memory-maps (models/serving/)."""
import logging

import pandas as pd

from src.recsys import paths
from src.recsys.columns import PAIR_COLUMNS, TRACK
from src.recsys.io import atomic_directory, timed
from src.recsys.serving.bundle import ServingBundle
from src.recsys.stage import stage


@stage("serving")
def main(logger: logging.Logger) -> None:
    with timed(logger, "building the serving bundle"):
        bundle = ServingBundle.build(
            recommendations=pd.read_parquet(paths.FINAL),
            similar=pd.read_parquet(paths.SIMILAR),
            top_popular=pd.read_parquet(paths.TOP_POPULAR, columns=[TRACK]),
            train=pd.read_parquet(paths.TRAIN, columns=PAIR_COLUMNS),
            items=pd.read_parquet(paths.ITEMS, columns=[TRACK, "name"]),
        )
    with atomic_directory(paths.SERVING_BUNDLE) as folder:
        manifest = bundle.save(folder)
    logger.info("bundle %s: %s", manifest["version"], ", ".join(f"{k} {v}" for k, v in manifest["counts"].items()))


if __name__ == "__main__":
    main()
