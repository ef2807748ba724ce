"""DVC stage `similar`: for every train track, its most similar tracks by ALS item factors."""
import dataclasses
import logging

from src.recsys import paths
from src.recsys.als_model import AlsModel
from src.recsys.columns import SIMILAR_TRACK, TRACK
from src.recsys.config import Config, integer, param
from src.recsys.interactions import ranked_frame
from src.recsys.io import progress_logger, timed, write_parquet
from src.recsys.stage_runner import stage
from src.recsys.topk import similar_items


@dataclasses.dataclass(frozen=True)
class SimilarConfig(Config):
    n: int = param("similar.n", integer(1))


@stage("similar", SimilarConfig)
def main(cfg: SimilarConfig, logger: logging.Logger) -> None:
    model = AlsModel.load(paths.ALS_MODEL)
    with timed(logger, f"top-{cfg.n} similar tracks for {len(model.item_ids)} tracks"):
        indices, scores = similar_items(model.item_factors, cfg.n, progress=progress_logger(logger, "similar tracks"))
    frame = ranked_frame(model.item_ids, model.item_ids, indices, scores, TRACK, SIMILAR_TRACK)
    logger.info("read factors of %d tracks; wrote %d similar pairs", len(model.item_ids), len(frame))
    write_parquet(frame, paths.SIMILAR)


if __name__ == "__main__":
    main()
