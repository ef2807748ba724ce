"""DVC stage `replay`: offline replay of the served lists (online listens revealed from the test period)."""
import dataclasses
import logging

import pandas as pd

from src.recsys import paths
from src.recsys.columns import EVENT_COLUMNS
from src.recsys.config import Config, increasing_integers, integer, invalid, param, section
from src.recsys.io import progress_logger, timed, write_json
from src.recsys.serving.blend import MODES
from src.recsys.serving.bundle_reader import ServingBundle
from src.recsys.serving.holdout import HoldoutConfig
from src.recsys.serving.online_replay import replay_headline, replay_report
from src.recsys.stage_runner import stage


@dataclasses.dataclass(frozen=True)
class ReplayConfig(Config):
    """The `replay` section and the holdout split (the blend itself comes from the bundle)."""

    reveal: tuple[int, ...] = param("replay.reveal", increasing_integers(1))  # m values
    headline_reveal: int = param("replay.headline_reveal", integer(1))  # the m of the declared metrics
    k: int = param("replay.k", integer(1))
    max_users: int = param("replay.max_users", integer(1))  # users sampled per m above this many
    seed: int = param("replay.seed", integer(0))
    holdout: HoldoutConfig = section(HoldoutConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.headline_reveal not in self.reveal:
            raise invalid("replay.headline_reveal", self.headline_reveal, f"one of replay.reveal {list(self.reveal)}")


@stage("replay", ReplayConfig)
def main(cfg: ReplayConfig, logger: logging.Logger) -> None:
    bundle = ServingBundle.open(paths.SERVING_BUNDLE)
    test = pd.read_parquet(paths.TEST, columns=EVENT_COLUMNS)
    with timed(logger, f"replaying the bundle's blend {bundle.blend}"):
        report = replay_report(bundle, test, cfg.reveal, cfg.k, cfg.max_users, cfg.seed, cfg.holdout,
                               progress_logger(logger, "replayed users", every=0.25))
    k = cfg.k
    for name, scores in report.items():
        logger.info("%-15s users %6d  ndcg@%d blended %.4f  offline %.4f  online %.4f", name, scores["users"], k,
                    *(scores[mode][f"ndcg_at_{k}"] for mode in MODES))
    write_json({"blend": bundle.blend.to_dict(), **report}, paths.REPLAY_FULL)
    write_json(replay_headline(report, k, cfg.headline_reveal), paths.REPLAY_HEADLINE)


if __name__ == "__main__":
    main()
