"""DVC stage `generate`: synthetic raw files shaped like the real Yandex Music data."""
from pathlib import Path

from src.recsys.io import atomic_directory, timed
from src.recsys.stage import stage
from src.recsys.synthetic import generate_dataset

OUT_DIR = Path("data/synthetic")


@stage("generate")
def main(params, logger):
    cfg = params["generate"]
    with atomic_directory(OUT_DIR) as tmp, timed(logger, f"generating scale {cfg['scale']} seed {cfg['seed']}"):
        summary = generate_dataset(tmp, cfg["scale"], cfg["seed"], cfg["chunk_users"], logger)
    logger.info("wrote %s: %s", OUT_DIR, summary)


if __name__ == "__main__":
    main()
