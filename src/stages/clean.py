"""DVC stage `clean`: validate the raw files, apply the cleaning rules, write items, events and catalogs."""
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from src.recsys.catalogs import CATALOG_KINDS, build_items, entity_catalog, track_catalog
from src.recsys.cleaning import Events, clean_events, clean_tracks
from src.recsys.io import timed, write_json, write_parquet
from src.recsys.stage import stage
from src.recsys.validation import validate_raw_dir, validate_values

OUT_DIR = Path("data/processed")
QUALITY = Path("metrics/data_quality.json")
INT32_MAX = np.iinfo(np.int32).max


def read_events(path: Path) -> tuple[Events, np.ndarray]:
    """Interactions as numpy columns (ignoring the stored pandas index) and a mask of rows with nulls."""
    table = pq.read_table(path, columns=["user_id", "track_id", "track_seq", "started_at"])
    nulls = np.zeros(table.num_rows, dtype=bool)
    for column in table.columns:
        if column.null_count:
            nulls |= column.is_null().to_numpy(zero_copy_only=False)
    columns = {name: table[name].fill_null(0).to_numpy() for name in ("user_id", "track_id", "track_seq")}
    for name, top in (("user_id", INT32_MAX), ("track_id", INT32_MAX), ("track_seq", np.iinfo(np.int16).max)):
        values = columns[name][~nulls]
        if len(values):
            validate_values(path, name, values.min() >= 0 and values.max() <= top,
                            f"ids in 0..{top}", f"values from {values.min()} to {values.max()}")
    started_at = table["started_at"].cast(pa.timestamp("ns")).fill_null(0).to_numpy()
    del table
    events = Events(columns["user_id"].astype(np.int32), columns["track_id"].astype(np.int32),
                    columns["track_seq"].astype(np.int16), started_at)
    return events, nulls


@stage("clean")
def main(params, logger):
    raw_dir = Path(params["data"]["raw_dir"])
    validate_raw_dir(raw_dir)
    with timed(logger, f"reading {raw_dir}"):
        tracks = pq.read_table(raw_dir / "tracks.parquet", columns=["track_id", *CATALOG_KINDS])
        catalog = pd.read_parquet(raw_dir / "catalog_names.parquet", columns=["id", "type", "name"])
        events, nulls = read_events(raw_dir / "interactions.parquet")
    logger.info("read %d tracks, %d catalog names, %d events", tracks.num_rows, len(catalog), len(events))
    ids = tracks["track_id"].to_numpy()
    validate_values(raw_dir / "tracks.parquet", "track_id", ids.min() >= 0 and ids.max() <= INT32_MAX,
                    f"ids in 0..{INT32_MAX}", f"values from {ids.min()} to {ids.max()}")

    with timed(logger, "cleaning tracks"):
        tracks, track_report = clean_tracks(tracks, catalog)
    with timed(logger, "cleaning events"):
        events, event_report = clean_events(events, tracks["track_id"].to_numpy(), params["clean"]["min_user_events"], nulls)
    logger.info("tracks %d -> %d, events %d -> %d", track_report["tracks_in"], track_report["tracks_out"],
                event_report["events_in"], event_report["events_out"])

    with timed(logger, "building items and catalogs"):
        items = build_items(tracks, catalog, events.track_id)
        track_report["tracks_without_name"] = int(items["name"].isna().sum())
        track_report["tracks_never_listened"] = int((items["listens"] == 0).sum())
        outputs = {f"catalog_{column}": entity_catalog(tracks, catalog, column) for column in CATALOG_KINDS}
        outputs["catalog_tracks"] = track_catalog(catalog, items)
        outputs["items"] = items
    with timed(logger, f"writing {OUT_DIR}"):
        for name, frame in outputs.items():
            write_parquet(frame, OUT_DIR / f"{name}.parquet")
        write_parquet(pa.table(vars(events)), OUT_DIR / "events.parquet")
        write_json({**track_report, **event_report}, QUALITY)


if __name__ == "__main__":
    main()
