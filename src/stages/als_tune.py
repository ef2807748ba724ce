"""DVC stage `als_tune`: ALS on the train events before T - W, stopped when another iteration no longer raises
NDCG@10 on the listens in [T - W, T) (src/recsys/als_tuning.py). Its iteration count is the `als` stage's,
and its model is the ranker's feature-period ALS (`rank_train`)."""
import dataclasses
import logging

import pandas as pd

from src.recsys import paths
from src.recsys.als_model import AlsFitConfig
from src.recsys.als_tuning import AlsTuningConfig, ValidationUsers, fit_until_no_gain
from src.recsys.columns import EVENT_COLUMNS
from src.recsys.config import Config, day, integer, param, section
from src.recsys.io import timed, write_json
from src.recsys.ranking.dataset import feature_history
from src.recsys.stage_runner import stage


@dataclasses.dataclass(frozen=True)
class AlsTuneConfig(Config):
    split_date: str = param("split.date", day())
    label_days: int = param("rank.label_days", integer(1))
    fit: AlsFitConfig = section(AlsFitConfig)
    tuning: AlsTuningConfig = section(AlsTuningConfig)


@stage("als_tune", AlsTuneConfig)
def main(cfg: AlsTuneConfig, logger: logging.Logger) -> None:
    history, held_out = feature_history(pd.read_parquet(paths.TRAIN, columns=EVENT_COLUMNS), cfg.split_date,
                                        cfg.label_days)
    data = history.interaction_matrix()
    del history
    validation = ValidationUsers.of(data, held_out, cfg.tuning.users, cfg.fit.random_state)
    logger.info("feature period: %d users x %d tracks, %d listens; %d validation users",
                *data.matrix.shape, data.matrix.nnz, len(validation.rows))
    with timed(logger, f"fitting ALS until an iteration gains less than {cfg.tuning.min_gain:.2%}"):
        model, report = fit_until_no_gain(data, validation, cfg.fit, cfg.tuning, logger.info)
    logger.info("chose %d iterations (validation NDCG@10 %.4f)", report["iterations"],
                report["validation_ndcg_at_10"])
    model.save(paths.ALS_FEATURE_MODEL)
    write_json(report, paths.ALS_TUNE)


if __name__ == "__main__":
    main()
