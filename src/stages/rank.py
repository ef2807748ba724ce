"""DVC stage `rank`: final recommendations, the ranker's top-n over candidates built on all train events."""
import dataclasses
import logging

import pandas as pd
from catboost import CatBoost

from src.recsys import paths
from src.recsys.als_model import AlsModel
from src.recsys.columns import TRACK
from src.recsys.config import Config, day, integer, param, section
from src.recsys.io import progress_logger, timed, write_parquet
from src.recsys.ranking.offline_candidates import similar_table_to_arrays
from src.recsys.ranking.history import History
from src.recsys.ranking.pipeline import RankingConfig, RankingContext, rank_users
from src.recsys.stage_runner import stage


@dataclasses.dataclass(frozen=True)
class RankConfig(Config):
    split_date: str = param("split.date", day())
    similar_n: int = param("similar.n", integer(1))
    n: int = param("rank.n", integer(1))
    ranking: RankingConfig = section(RankingConfig)


@stage("rank", RankConfig)
def main(cfg: RankConfig, logger: logging.Logger) -> None:
    train = pd.read_parquet(paths.TRAIN)
    items = pd.read_parquet(paths.ITEMS, columns=[TRACK, "artists", "genres"])
    n_train = len(train)
    history = History.before(train, cfg.split_date)
    del train
    model = AlsModel.load(paths.ALS_MODEL)
    data = history.interaction_matrix()
    model.check_fit_on(data)
    similar = similar_table_to_arrays(pd.read_parquet(paths.SIMILAR), model.item_ids, cfg.similar_n)
    context = RankingContext.build(history, model, data.matrix, similar, items, cfg.ranking)
    ranker = CatBoost()
    ranker.load_model(str(paths.RANKER_MODEL))
    with timed(logger, f"ranking candidates of {len(model.user_ids)} users"):
        recs = rank_users(context, model.user_ids, lambda features: ranker.predict(features.to_numpy()), cfg.n,
                         progress_logger(logger, "ranked users"))
    logger.info("read %d train events; wrote %d recommendations for %d users",
                n_train, len(recs), recs["user_id"].nunique())
    write_parquet(recs, paths.FINAL)


if __name__ == "__main__":
    main()
