"""DVC stage `rank`: final recommendations, the ranker's top-n over candidates built on all train events."""
from pathlib import Path

import pandas as pd
from catboost import CatBoost

from src.recsys.als import AlsModel
from src.recsys.io import progress_logger, timed, write_parquet
from src.recsys.ranking.candidates import similar_table_to_arrays
from src.recsys.ranking.history import History
from src.recsys.ranking.pipeline import RankingContext, recommend
from src.recsys.stage import stage


@stage("rank")
def main(params, logger):
    cfg = params["rank"]
    train = pd.read_parquet("data/split/train.parquet")
    items = pd.read_parquet("data/processed/items.parquet", columns=["track_id", "artists", "genres"])
    n_train = len(train)
    history = History.before(train, params["split"]["date"])
    del train
    model = AlsModel.load("models/als.npz")
    data = history.interaction_matrix()
    model.check_fit_on(data)
    similar = similar_table_to_arrays(pd.read_parquet("data/recommendations/similar.parquet"), model.item_ids,
                                      params["similar"]["n"])
    context = RankingContext.build(history, model, data.matrix, similar, items, cfg)
    ranker = CatBoost()
    ranker.load_model("models/ranker.cbm")
    with timed(logger, f"ranking candidates of {len(model.user_ids)} users"):
        recs = recommend(context, model.user_ids, lambda features: ranker.predict(features.to_numpy()), cfg["n"],
                         progress_logger(logger, "ranked users"))
    logger.info("read %d train events; wrote %d recommendations for %d users",
                n_train, len(recs), recs["user_id"].nunique())
    write_parquet(recs, Path("data/recommendations/recommendations.parquet"))


if __name__ == "__main__":
    main()
