"""DVC stage `replay`: offline replay of the served blend (online listens revealed from the test period)."""
from pathlib import Path

import pandas as pd

from src.recsys.io import progress_logger, timed, write_json
from src.recsys.serving.blend import BlendConfig
from src.recsys.serving.bundle import ServingBundle
from src.recsys.serving.replay import replay_headline, replay_report
from src.recsys.stage import stage


@stage("replay")
def main(params, logger):
    cfg = params["replay"]
    config = BlendConfig.from_params(params["service"])
    bundle = ServingBundle.open("models/serving")
    test = pd.read_parquet("data/split/test.parquet", columns=["user_id", "track_id", "track_seq", "started_at"])
    with timed(logger, f"replaying {config}"):
        report = replay_report(bundle, test, cfg["reveal"], cfg["k"], cfg["max_users"], cfg["seed"], config,
                               progress_logger(logger, "replayed users", every=0.25))
    k = cfg["k"]
    for name, scores in report.items():
        logger.info("%-15s users %6d  ndcg@%d blended %.4f  offline %.4f  online %.4f", name, scores["users"], k,
                    *(scores[mode][f"ndcg_at_{k}"] for mode in ("blended", "offline", "online")))
    write_json(report, Path("metrics/replay_full.json"))
    write_json(replay_headline(report, k), Path("metrics/replay.json"))


if __name__ == "__main__":
    main()
