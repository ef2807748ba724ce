"""DVC stage `generate`: synthetic raw files shaped like the real Yandex Music data."""
import logging

from src.recsys.config import GenerateConfig
from src.recsys.io import atomic_directory, timed
from src.recsys.paths import SYNTHETIC
from src.recsys.stage import stage
from src.recsys.synthetic import generate_dataset


@stage("generate", GenerateConfig)
def main(cfg: GenerateConfig, logger: logging.Logger) -> None:
    with atomic_directory(SYNTHETIC) as tmp, timed(logger, f"generating scale {cfg.scale} seed {cfg.seed}"):
        summary = generate_dataset(tmp, cfg.scale, cfg.seed, cfg.chunk_users, logger)
    logger.info("wrote %s: %s", SYNTHETIC, summary)


if __name__ == "__main__":
    main()
