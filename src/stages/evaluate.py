"""DVC stage `evaluate`: offline metrics of every recommender on the test split, plus per-k plot data."""
from pathlib import Path

import pandas as pd

from src.recsys import evaluation, headline, oracle
from src.recsys.io import progress_logger, timed, write_csv, write_json
from src.recsys.stage import stage
from src.recsys.synthetic.preferences import has_ground_truth, load_ground_truth

RECOMMENDATIONS = Path("data/recommendations")
PLOTS = Path("metrics/evaluation")


@stage("evaluate")
def main(params, logger):
    cfg = params["evaluate"]
    ks = sorted(cfg["k"])
    train = pd.read_parquet("data/split/train.parquet", columns=["user_id", "track_id"])
    test = pd.read_parquet("data/split/test.parquet", columns=["user_id", "track_id", "started_at"])
    with timed(logger, "encoding the split"):
        data = evaluation.build_evaluation_set(train, test)
    del train
    logger.info("evaluated users: %d, cold test users: %d", len(data.users), len(data.cold_users))

    popular = pd.read_parquet(RECOMMENDATIONS / "top_popular.parquet")["track_id"].to_numpy()
    results = {"top_popular": evaluation.evaluate_popular(popular, data, ks, params["popular"]["filter_seen"])}
    for name, file in (("personal_als", "personal_als.parquet"), ("final", "recommendations.parquet")):
        with timed(logger, f"scoring {name}"):
            recs = pd.read_parquet(RECOMMENDATIONS / file, columns=["user_id", "track_id", "rank"])
            results[name] = evaluation.evaluate_recommendations(recs, data, ks)
    raw_dir = Path(params["data"]["raw_dir"])
    if has_ground_truth(raw_dir):
        with timed(logger, "scoring the oracle"):
            rows = oracle.sample_rows(len(data.users), cfg["oracle_max_users"], cfg["seed"])
            day = oracle.test_period_day(test["started_at"].to_numpy())
            results["oracle"] = oracle.oracle_metrics(load_ground_truth(raw_dir), data, rows, day, ks,
                                                      progress=progress_logger(logger, "oracle users"))
    for name, scores in results.items():
        logger.info("%-14s ndcg@10 %.4f  recall@10 %.4f  precision@10 %.4f", name,
                    scores.get("ndcg_at_10", float("nan")), scores.get("recall_at_10", float("nan")),
                    scores.get("precision_at_10", float("nan")))
    results["cold_users_top_popular"] = evaluation.evaluate_cold_users(popular, data, ks)

    for metric, table in evaluation.per_k_tables(results, ks).items():
        write_csv(table, PLOTS / f"{metric}.csv")
    write_json(results, Path("metrics/evaluation_full.json"))
    write_json(headline.headline(results), Path("metrics/evaluation.json"))


if __name__ == "__main__":
    main()
