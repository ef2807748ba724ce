"""DVC stage `rank_train`: fit the CatBoost ranker on candidates as of T - W (with `als_tune`'s ALS, fit on the
events before T - W alone), labelled by [T - W, T)."""
import logging

import pandas as pd

from src.recsys import figures, paths
from src.recsys.als_model import AlsModel
from src.recsys.columns import TRACK
from src.recsys.io import atomic_path, progress_logger, timed, write_csv, write_json
from src.recsys.ranking.model import fit_ranker, importances
from src.recsys.ranking.pipeline import training_frame
from src.recsys.ranking.dataset import feature_history
from src.recsys.ranking.training import RankTrainConfig, prepare_training
from src.recsys.stage_runner import stage


@stage("rank_train", RankTrainConfig)
def main(cfg: RankTrainConfig, logger: logging.Logger) -> None:
    train = pd.read_parquet(paths.TRAIN)
    items = pd.read_parquet(paths.ITEMS, columns=[TRACK, "artists", "genres"])
    history, labels = feature_history(train, cfg.split_date, cfg.label_days)
    del train
    setup = prepare_training(history, labels, items, AlsModel.load(paths.ALS_FEATURE_MODEL), cfg, logger)
    with timed(logger, f"candidates and features for {len(setup.users)} users"):
        frame = training_frame(setup.context, setup.users, labels, cfg.negatives_per_user, setup.rng, logger,
                               progress_logger(logger, "training users"))
    logger.info("training rows: %d (%.1f%% positive)", len(frame), 100 * frame["label"].mean())

    with timed(logger, f"fitting CatBoost ({cfg.model.loss})"), atomic_path(paths.RANKER_MODEL) as tmp:
        ranker, report = fit_ranker(frame, cfg.model)
        ranker.save_model(str(tmp))
    weights = importances(ranker)
    table = pd.DataFrame({"feature": list(weights), "importance": list(weights.values())})
    figures.bar_figure(table, "feature", "importance", "Ranker feature importance", paths.RANKER_FIGURE)
    write_csv(table, paths.RANKER_IMPORTANCE)
    write_json({**report, "training_users": int(len(setup.users))}, paths.RANKER_REPORT)


if __name__ == "__main__":
    main()
