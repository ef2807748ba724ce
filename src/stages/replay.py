"""DVC stage `replay`: offline replay of the served blend (online listens revealed from the test period)."""
import logging

import pandas as pd

from src.recsys import paths
from src.recsys.columns import EVENT_COLUMNS
from src.recsys.io import progress_logger, timed, write_json
from src.recsys.serving.blend import MODES
from src.recsys.serving.bundle import ServingBundle
from src.recsys.serving.replay import ReplayConfig, replay_headline, replay_report
from src.recsys.stage import stage


@stage("replay", ReplayConfig)
def main(cfg: ReplayConfig, logger: logging.Logger) -> None:
    bundle = ServingBundle.open(paths.SERVING_BUNDLE)
    test = pd.read_parquet(paths.TEST, columns=EVENT_COLUMNS)
    with timed(logger, f"replaying {cfg.blend}"):
        report = replay_report(bundle, test, cfg.reveal, cfg.k, cfg.max_users, cfg.seed, cfg.blend,
                               progress_logger(logger, "replayed users", every=0.25))
    k = cfg.k
    for name, scores in report.items():
        logger.info("%-15s users %6d  ndcg@%d blended %.4f  offline %.4f  online %.4f", name, scores["users"], k,
                    *(scores[mode][f"ndcg_at_{k}"] for mode in MODES))
    write_json(report, paths.REPLAY_FULL)
    write_json(replay_headline(report, k), paths.REPLAY_HEADLINE)


if __name__ == "__main__":
    main()
