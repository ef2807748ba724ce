"""DVC stage `eda`: summary metrics, plot data for `dvc plots` and PNG figures of the clean data."""
import dataclasses
import logging

import pandas as pd

from src.recsys import eda_stats, figures
from src.recsys.config import Config, integer, param, section
from src.recsys.io import write_csv, write_json
from src.recsys.paths import EDA_FIGURES as FIGURES
from src.recsys.paths import EDA_PLOTS as PLOTS
from src.recsys.paths import EDA_SUMMARY, EVENTS, ITEMS, PROCESSED
from src.recsys.stage_runner import stage
from src.spark_engine.spark_settings import EngineConfig


@dataclasses.dataclass(frozen=True)
class EdaConfig(Config):
    top_n: int = param("eda.top_n", integer(1))
    histogram_bins: int = param("eda.histogram_bins", integer(1))
    engine: EngineConfig = section(EngineConfig)


@stage("eda", EdaConfig)
def main(cfg: EdaConfig, logger: logging.Logger) -> None:
    items = pd.read_parquet(ITEMS, columns=["track_id", "name", "albums", "genres", "artists", "listens"])
    if cfg.engine.on_spark:
        from src.spark_engine.spark_eda import event_aggregates
        from src.spark_engine.spark_session import spark_session

        with spark_session(cfg.engine.spark, "eda") as spark:
            events = event_aggregates(spark, EVENTS, items)
    else:
        events = eda_stats.scan_events(EVENTS, items)
    logger.info("read %d items; %d events aggregated; sequences: %s", len(items), events.events, events.sequences)
    user_counts = events.user_counts
    per_day = eda_stats.day_table(events.days, events.day_counts)
    summary = eda_stats.summary_of(items, user_counts, events.events, events.first, events.last)
    summary["sequences"] = events.sequences

    listens = items["listens"].to_numpy()
    tables = {
        "listens_per_track.csv": eda_stats.log_histogram(listens[listens > 0], cfg.histogram_bins),
        "listens_per_user.csv": eda_stats.log_histogram(user_counts, cfg.histogram_bins),
        "events_per_day.csv": per_day,
        "top_tracks.csv": eda_stats.top_tracks(items, cfg.top_n),
        "top_genres.csv": eda_stats.top_entities(items, pd.read_parquet(PROCESSED / "catalog_genres.parquet"), "genres", cfg.top_n),
        "top_artists.csv": eda_stats.top_entities(items, pd.read_parquet(PROCESSED / "catalog_artists.parquet"), "artists", cfg.top_n),
    }
    for name, frame in tables.items():
        write_csv(frame, PLOTS / name)
    figures.histogram_figure(tables["listens_per_track.csv"], "Listens per track", "listens", FIGURES / "listens_per_track.png")
    figures.histogram_figure(tables["listens_per_user.csv"], "Listens per user", "listens", FIGURES / "listens_per_user.png")
    figures.line_figure(tables["events_per_day.csv"], "date", "events", "Events per day", FIGURES / "events_per_day.png")
    for name in ("tracks", "genres", "artists"):
        figures.bar_figure(tables[f"top_{name}.csv"], "name", "listens", f"Top {cfg.top_n} {name} by listens",
                           FIGURES / f"top_{name}.png")
    write_json(summary, EDA_SUMMARY)


if __name__ == "__main__":
    main()
