"""DVC stage `als`: fit implicit ALS on train and recommend the top-n for every train user."""
from pathlib import Path

import pandas as pd

from src.recsys.als import fit_als
from src.recsys.interactions import InteractionMatrix, ranked_frame
from src.recsys.io import progress_logger, timed, write_parquet
from src.recsys.stage import stage
from src.recsys.topk import top_k_scores

MODEL = Path("models/als.npz")
RECOMMENDATIONS = Path("data/recommendations/personal_als.parquet")


@stage("als")
def main(params, logger):
    cfg = params["als"]
    data = InteractionMatrix.from_events(pd.read_parquet("data/split/train.parquet", columns=["user_id", "track_id"]))
    logger.info("train matrix: %d users x %d tracks, %d listens", *data.matrix.shape, data.matrix.nnz)
    with timed(logger, f"fitting ALS ({cfg['factors']} factors, {cfg['iterations']} iterations)"):
        model = fit_als(data, cfg["factors"], cfg["iterations"], cfg["regularization"], cfg["alpha"], cfg["random_state"])
    model.save(MODEL)
    with timed(logger, f"top-{cfg['n']} for {len(model.user_ids)} users"):
        indices, scores = top_k_scores(
            model.user_factors, model.item_factors, cfg["n"],
            exclude=data.matrix if cfg["filter_seen"] else None,
            progress=progress_logger(logger, "recommending"),
        )
    recs = ranked_frame(model.user_ids, model.item_ids, indices, scores, "user_id", "track_id")
    logger.info("wrote %d recommendations for %d users", len(recs), recs["user_id"].nunique())
    write_parquet(recs, RECOMMENDATIONS)


if __name__ == "__main__":
    main()
