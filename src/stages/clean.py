"""DVC stage `clean`: validate the raw files, apply the cleaning rules, write items, events and catalogs."""
import dataclasses
import logging
from pathlib import Path

import pandas as pd

from src.recsys import paths
from src.recsys.catalogs import items_table, processed_tables
from src.recsys.cleaning import clean_event_file, clean_tracks, read_tracks
from src.recsys.config import Config, integer, param, section, text
from src.recsys.io import timed, write_json, write_parquet
from src.recsys.stage_runner import stage
from src.recsys.validation import validate_raw_dir
from src.spark_engine.spark_settings import EngineConfig


@dataclasses.dataclass(frozen=True)
class CleanConfig(Config):
    raw_dir: str = param("data.raw_dir", text())
    min_user_events: int = param("clean.min_user_events", integer(1))
    engine: EngineConfig = section(EngineConfig)


@stage("clean", CleanConfig)
def main(cfg: CleanConfig, logger: logging.Logger) -> None:
    raw_dir = Path(cfg.raw_dir)
    validate_raw_dir(raw_dir)
    if cfg.engine.on_spark:
        from src.spark_engine.spark_cleaning import clean
        from src.spark_engine.spark_session import spark_session

        with spark_session(cfg.engine.spark, "clean") as spark, timed(logger, f"cleaning {raw_dir} on Spark"):
            outputs, report = clean(spark, raw_dir, cfg.min_user_events, paths.EVENTS)
    else:
        outputs, report = clean_locally(raw_dir, cfg.min_user_events, logger, paths.EVENTS)
    logger.info("tracks %d -> %d, events %d -> %d", report["tracks_in"], report["tracks_out"],
                report["events_in"], report["events_out"])
    with timed(logger, f"writing {paths.PROCESSED}"):
        for name, frame in outputs.items():
            write_parquet(frame, paths.PROCESSED / f"{name}.parquet")
        write_json(report, paths.DATA_QUALITY)


def clean_locally(raw_dir: Path, min_user_events: int, logger: logging.Logger, events_path: Path
                  ) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """The clean tables but the events, which go to ``events_path`` as they are cleaned, and the report."""
    with timed(logger, f"reading {raw_dir} catalogs"):
        tracks = read_tracks(raw_dir / "tracks.parquet")
        catalog = pd.read_parquet(raw_dir / "catalog_names.parquet", columns=["id", "type", "name"])
    logger.info("read %d tracks, %d catalog names", tracks.num_rows, len(catalog))

    with timed(logger, "cleaning tracks"):
        tracks, track_report = clean_tracks(tracks, catalog)
    with timed(logger, f"cleaning events into {events_path}"):
        event_report, listens = clean_event_file(raw_dir / "interactions.parquet", tracks["track_id"].to_numpy(),
                                                 min_user_events, events_path)

    with timed(logger, "building items and catalogs"):
        items = items_table(tracks, catalog, lambda track_ids: listens)
        outputs, item_counts = processed_tables(tracks, catalog, items)
    return outputs, {**track_report, **item_counts, **event_report}


if __name__ == "__main__":
    main()
