"""DVC stage `rank_train`: fit the CatBoost ranker on candidates as of T - W, labelled by [T - W, T)."""
from pathlib import Path

import numpy as np
import pandas as pd

from src.recsys import figures
from src.recsys.als import fit_als
from src.recsys.io import atomic_path, progress_logger, timed, write_csv, write_json
from src.recsys.ranking.dataset import label_window, training_users, window_events
from src.recsys.ranking.history import History
from src.recsys.ranking.model import fit_ranker, importances
from src.recsys.ranking.pipeline import RankingContext, similar_for_recent, training_frame
from src.recsys.stage import stage

MODEL = Path("models/ranker.cbm")


@stage("rank_train")
def main(params, logger):
    cfg, als = params["rank"], params["als"]
    train = pd.read_parquet("data/split/train.parquet")
    items = pd.read_parquet("data/processed/items.parquet", columns=["track_id", "artists", "genres"])
    start, end = label_window(params["split"]["date"], cfg["label_days"])
    history = History.before(train, start)
    labels = window_events(train, start, end)[["user_id", "track_id"]]
    del train
    logger.info("features before %s: %d events; labels in [%s, %s): %d events",
                start, len(history), start, end, len(labels))

    data = history.interaction_matrix()
    with timed(logger, f"fitting ALS on the feature period ({cfg['als_iterations']} iterations)"):
        model = fit_als(data, als["factors"], cfg["als_iterations"], als["regularization"], als["alpha"],
                        als["random_state"], show_progress=False)
    rng = np.random.default_rng(cfg["model"]["seed"])
    users = training_users(history.user_ids, labels, cfg["max_train_users"], rng)
    similar = similar_for_recent(model, history, users, cfg["candidates"]["recent_listens"], params["similar"]["n"])
    context = RankingContext.build(history, model, data.matrix, similar, items, cfg)
    with timed(logger, f"candidates and features for {len(users)} users"):
        frame = training_frame(context, users, labels, rng, logger, progress_logger(logger, "training users"))
    logger.info("training rows: %d (%.1f%% positive)", len(frame), 100 * frame["label"].mean())

    with timed(logger, f"fitting CatBoost ({cfg['model']['loss']})"), atomic_path(MODEL) as tmp:
        ranker, report = fit_ranker(frame, cfg["model"])
        ranker.save_model(str(tmp))
    weights = importances(ranker)
    table = pd.DataFrame({"feature": list(weights), "importance": list(weights.values())})
    figures.bar_figure(table, "feature", "importance", "Ranker feature importance", Path("reports/ranker/feature_importance.png"))
    write_csv(table, Path("metrics/ranker/feature_importance.csv"))
    write_json({**report, "training_users": int(len(users))}, Path("metrics/ranker.json"))


if __name__ == "__main__":
    main()
