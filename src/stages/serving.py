"""DVC stage `serving`: the bundle the recommendation service memory-maps (models/serving/), with its blend.

The blend settings are chosen here, by replaying the tuning users of the test period on the bundle just
built (``serving/search.py``), and saved inside the bundle; the trials go to metrics/blend_search.json.
"""
import logging

import pandas as pd

from src.recsys import paths
from src.recsys.columns import EVENT_COLUMNS, TRACK
from src.recsys.io import atomic_directory, timed, write_json
from src.recsys.serving.bundle_builder import TrainHistory, build_bundle, save_bundle
from src.recsys.serving.online_replay import listening_sequences
from src.recsys.serving.search import BlendSearchConfig, search_blend
from src.recsys.stage_runner import stage


@stage("serving", BlendSearchConfig)
def main(cfg: BlendSearchConfig, logger: logging.Logger) -> None:
    with timed(logger, "building the serving bundle"):
        history = TrainHistory.read(paths.TRAIN)  # first, while nothing else is held: its sort is the peak
        bundle = build_bundle(
            recommendations=pd.read_parquet(paths.FINAL),
            similar=pd.read_parquet(paths.SIMILAR),
            played_next=pd.read_parquet(paths.PLAYED_NEXT),
            top_popular=pd.read_parquet(paths.TOP_POPULAR, columns=[TRACK]),
            train=history,
            items=pd.read_parquet(paths.ITEMS, columns=[TRACK, "name", "albums", "artists"]),
        )
        del history
    with timed(logger, "searching the blend on the tuning users"):
        sequences = listening_sequences(pd.read_parquet(paths.TEST, columns=EVENT_COLUMNS))
        blend, reranker, report = search_blend(bundle, sequences, cfg, logger.info)
    with atomic_directory(paths.SERVING_BUNDLE) as folder:
        manifest = save_bundle(bundle.with_blend(blend, reranker), folder)
    write_json(report, paths.BLEND_SEARCH)
    logger.info("bundle %s: %s", manifest["version"], ", ".join(f"{k} {v}" for k, v in manifest["counts"].items()))


if __name__ == "__main__":
    main()
