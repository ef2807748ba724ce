"""DVC stage `similar`: for every train track, its most similar tracks by ALS item factors."""
from pathlib import Path

from src.recsys.als import AlsModel
from src.recsys.interactions import ranked_frame
from src.recsys.io import progress_logger, timed, write_parquet
from src.recsys.stage import stage
from src.recsys.topk import similar_items


@stage("similar")
def main(params, logger):
    n = params["similar"]["n"]
    model = AlsModel.load("models/als.npz")
    with timed(logger, f"top-{n} similar tracks for {len(model.item_ids)} tracks"):
        indices, scores = similar_items(model.item_factors, n, progress=progress_logger(logger, "similar tracks"))
    frame = ranked_frame(model.item_ids, model.item_ids, indices, scores, "track_id", "similar_track_id")
    logger.info("read factors of %d tracks; wrote %d similar pairs", len(model.item_ids), len(frame))
    write_parquet(frame, Path("data/recommendations/similar.parquet"))


if __name__ == "__main__":
    main()
