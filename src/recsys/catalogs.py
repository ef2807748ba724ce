"""Output tables of the clean stage: ``items`` and one catalog per entity type."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .arrays import lookup_sorted

CATALOG_KINDS = {"albums": "album", "artists": "artist", "genres": "genre"}


def names_of(catalog: pd.DataFrame, kind: str) -> pd.DataFrame:
    """id -> name for one entity type; a repeated id keeps its first name."""
    names = catalog.loc[catalog["type"] == kind, ["id", "name"]]
    return names.drop_duplicates("id").astype({"id": np.int64}).reset_index(drop=True)


def occurrences(values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """How often each ``query`` id occurs in ``values`` (0 when absent), vectorised."""
    ids, counts = np.unique(values, return_counts=True)
    return lookup_sorted(ids, counts.astype(np.int64), query, 0)


def build_items(tracks: pa.Table, catalog: pd.DataFrame, event_track_ids: np.ndarray) -> pd.DataFrame:
    """Kept tracks with their name (null when the catalog has none) and listens in the clean events."""
    return items_table(tracks, catalog, lambda track_ids: occurrences(event_track_ids, track_ids))


def items_table(tracks: pa.Table, catalog: pd.DataFrame, listens_of) -> pd.DataFrame:
    """``build_items`` with the listens from ``listens_of(track_ids)`` (counted elsewhere: the Spark engine)."""
    track_ids = tracks["track_id"].to_numpy().astype(np.int32)
    names = names_of(catalog, "track").set_index("id")["name"]
    items = pd.DataFrame({
        "track_id": track_ids,
        "name": names.reindex(track_ids.astype(np.int64)).to_numpy(),
    })
    for column in CATALOG_KINDS:
        items[column] = tracks[column].to_pandas()
    items["listens"] = listens_of(track_ids)
    return items


def processed_tables(tracks: pa.Table, catalog: pd.DataFrame, items: pd.DataFrame
                     ) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """The clean stage's tables but the events (by file name), and the items' counts for data_quality."""
    counts = {"tracks_without_name": int(items["name"].isna().sum()),
              "tracks_never_listened": int((items["listens"] == 0).sum())}
    outputs = {f"catalog_{column}": entity_catalog(tracks, catalog, column) for column in CATALOG_KINDS}
    outputs["catalog_tracks"] = track_catalog(catalog, items)
    outputs["items"] = items
    return outputs, counts


def entity_catalog(tracks: pa.Table, catalog: pd.DataFrame, column: str) -> pd.DataFrame:
    """Catalog of one entity type with the number of kept tracks referencing each id."""
    values = pc.list_flatten(tracks[column]).to_numpy(zero_copy_only=False).astype(np.int64)
    table = names_of(catalog, CATALOG_KINDS[column])
    table["tracks"] = occurrences(values, table["id"].to_numpy())
    return table


def track_catalog(catalog: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """All catalog track names with their listens in the clean events (0 for dropped tracks)."""
    table = names_of(catalog, "track")
    listens = items.set_index("track_id")["listens"]
    table["listens"] = listens.reindex(table["id"].to_numpy()).fillna(0).to_numpy(np.int64)
    return table
