"""DVC stage `serving`: the bundle the recommendation service memory-maps (models/serving/)."""
import pandas as pd

from src.recsys.io import atomic_directory, timed
from src.recsys.serving.bundle import ServingBundle
from src.recsys.stage import stage

BUNDLE = "models/serving"


@stage("serving")
def main(params, logger):
    with timed(logger, "building the serving bundle"):
        bundle = ServingBundle.build(
            recommendations=pd.read_parquet("data/recommendations/recommendations.parquet"),
            similar=pd.read_parquet("data/recommendations/similar.parquet"),
            top_popular=pd.read_parquet("data/recommendations/top_popular.parquet", columns=["track_id"]),
            train=pd.read_parquet("data/split/train.parquet", columns=["user_id", "track_id"]),
            items=pd.read_parquet("data/processed/items.parquet", columns=["track_id", "name"]),
        )
    with atomic_directory(BUNDLE) as folder:
        manifest = bundle.save(folder)
    logger.info("bundle %s: %s", manifest["version"], ", ".join(f"{k} {v}" for k, v in manifest["counts"].items()))


if __name__ == "__main__":
    main()
