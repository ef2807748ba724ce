"""DVC stage `clean`: validate the raw files, apply the cleaning rules, write items, events and catalogs."""
import dataclasses
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa

from src.recsys import paths
from src.recsys.catalogs import build_items, processed_tables
from src.recsys.cleaning import Events, clean_events, clean_tracks, read_events, read_tracks
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
            outputs, events, report = clean(spark, raw_dir, cfg.min_user_events)
    else:
        outputs, events, report = clean_locally(raw_dir, cfg.min_user_events, logger)
    logger.info("tracks %d -> %d, events %d -> %d", report["tracks_in"], report["tracks_out"],
                report["events_in"], report["events_out"])
    with timed(logger, f"writing {paths.PROCESSED}"):
        for name, frame in outputs.items():
            write_parquet(frame, paths.PROCESSED / f"{name}.parquet")
        write_parquet(pa.table(vars(events)), paths.EVENTS)
        write_json(report, paths.DATA_QUALITY)


def clean_locally(raw_dir: Path, min_user_events: int, logger: logging.Logger
                  ) -> tuple[dict[str, pd.DataFrame], Events, dict[str, int]]:
    with timed(logger, f"reading {raw_dir}"):
        tracks = read_tracks(raw_dir / "tracks.parquet")
        catalog = pd.read_parquet(raw_dir / "catalog_names.parquet", columns=["id", "type", "name"])
        events, nulls = read_events(raw_dir / "interactions.parquet")
    logger.info("read %d tracks, %d catalog names, %d events", tracks.num_rows, len(catalog), len(events))

    with timed(logger, "cleaning tracks"):
        tracks, track_report = clean_tracks(tracks, catalog)
    with timed(logger, "cleaning events"):
        events, event_report = clean_events(events, tracks["track_id"].to_numpy(), min_user_events, nulls)

    with timed(logger, "building items and catalogs"):
        outputs, item_counts = processed_tables(tracks, catalog, build_items(tracks, catalog, events.track_id))
    return outputs, events, {**track_report, **item_counts, **event_report}


if __name__ == "__main__":
    main()
