"""DVC stage `evaluate`: offline metrics of every recommender on the test split, plus per-k plot data."""
import dataclasses
import logging
from pathlib import Path

import pandas as pd

from src.recsys import evaluation, headline, oracle, paths
from src.recsys.columns import PAIR_COLUMNS, RANKED_COLUMNS, STARTED_AT, TRACK, USER
from src.recsys.config import Config, boolean, increasing_integers, integer, param, text
from src.recsys.io import progress_logger, timed, write_csv, write_json
from src.recsys.stage_runner import stage
from src.recsys.synthetic.preferences import has_ground_truth, load_ground_truth

RECOMMENDATION_FILES = {evaluation.PERSONAL_ALS: paths.PERSONAL_ALS, evaluation.FINAL: paths.FINAL}


@dataclasses.dataclass(frozen=True)
class EvaluateConfig(Config):
    raw_dir: str = param("data.raw_dir", text())
    popular_filter_seen: bool = param("popular.filter_seen", boolean())
    ks: tuple[int, ...] = param("evaluate.k", increasing_integers(1))
    oracle_max_users: int = param("evaluate.oracle_max_users", integer(1))
    seed: int = param("evaluate.seed", integer(0))


@stage("evaluate", EvaluateConfig)
def main(cfg: EvaluateConfig, logger: logging.Logger) -> None:
    ks = cfg.ks
    train = pd.read_parquet(paths.TRAIN, columns=PAIR_COLUMNS)
    test = pd.read_parquet(paths.TEST, columns=[USER, TRACK, STARTED_AT])
    with timed(logger, "encoding the split"):
        data = evaluation.build_evaluation_set(train, test)
    del train
    logger.info("evaluated users: %d, cold test users: %d", len(data.users), len(data.cold_users))

    popular = pd.read_parquet(paths.TOP_POPULAR)[TRACK].to_numpy()
    results = {evaluation.TOP_POPULAR: evaluation.evaluate_popular(popular, data, ks, cfg.popular_filter_seen)}
    for name, file in RECOMMENDATION_FILES.items():
        with timed(logger, f"scoring {name}"):
            results[name] = evaluation.evaluate_recommendations(pd.read_parquet(file, columns=RANKED_COLUMNS), data, ks)
    raw_dir = Path(cfg.raw_dir)
    if has_ground_truth(raw_dir):
        with timed(logger, "scoring the oracle"):
            rows = oracle.sample_rows(len(data.users), cfg.oracle_max_users, cfg.seed)
            day = oracle.test_period_day(test[STARTED_AT].to_numpy())
            results[evaluation.ORACLE] = oracle.oracle_metrics(load_ground_truth(raw_dir), data, rows, day, ks,
                                                               progress=progress_logger(logger, "oracle users"))
    for name, scores in results.items():
        for k in ks:
            logger.info("%-14s @%-3d ndcg %.4f  recall %.4f  precision %.4f", name, k,
                        scores[f"ndcg_at_{k}"], scores[f"recall_at_{k}"], scores[f"precision_at_{k}"])
    results[evaluation.COLD_USERS] = evaluation.evaluate_cold_users(popular, data, ks)

    for metric, table in evaluation.per_k_tables(results, ks).items():
        write_csv(table, paths.EVALUATION_PLOTS / f"{metric}.csv")
    write_json(results, paths.EVALUATION_FULL)
    write_json(headline.headline(results), paths.EVALUATION_HEADLINE)


if __name__ == "__main__":
    main()
