"""DVC stage `split`: time-based train/test split of the clean events."""
from pathlib import Path

import pandas as pd

from src.recsys.io import write_json, write_parquet
from src.recsys.split import time_split
from src.recsys.stage import stage

OUT_DIR = Path("data/split")


@stage("split")
def main(params, logger):
    cfg = params["split"]
    events = pd.read_parquet("data/processed/events.parquet")
    train, test, report = time_split(events, cfg["date"], cfg["train_sample_frac"], cfg["seed"])
    logger.info("split at %s: %s", cfg["date"], report)
    write_parquet(train, OUT_DIR / "train.parquet")
    write_parquet(test, OUT_DIR / "test.parquet")
    write_json(report, Path("metrics/split.json"))


if __name__ == "__main__":
    main()
