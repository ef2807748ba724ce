"""DVC stage `generate`: synthetic raw files shaped like the real Yandex Music data."""
import dataclasses
import logging

from src.recsys.config import Config, integer, number, param, section
from src.recsys.io import atomic_directory, timed
from src.recsys.paths import SYNTHETIC
from src.recsys.stage_runner import stage
from src.recsys.synthetic import SessionConfig, generate_dataset


@dataclasses.dataclass(frozen=True)
class GenerateConfig(Config):
    scale: float = param("generate.scale", number(0.0, low_open=True))
    seed: int = param("generate.seed", integer(0))
    chunk_users: int = param("generate.chunk_users", integer(1))
    sessions: SessionConfig = section(SessionConfig)


@stage("generate", GenerateConfig)
def main(cfg: GenerateConfig, logger: logging.Logger) -> None:
    with atomic_directory(SYNTHETIC) as tmp, timed(logger, f"generating scale {cfg.scale} seed {cfg.seed}"):
        summary = generate_dataset(tmp, cfg.scale, cfg.seed, cfg.chunk_users, cfg.sessions, logger)
    logger.info("wrote %s: %s", SYNTHETIC, summary)


if __name__ == "__main__":
    main()
