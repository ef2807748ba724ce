"""Up-front checks of the raw files, so bad input fails fast with one clear message.

Only the parquet footers are read: a 214M-row file is validated in milliseconds,
before any output is written.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .io import DataValidationError


def _is_integer(t: pa.DataType) -> bool:
    return pa.types.is_integer(t)


def _is_integer_list(t: pa.DataType) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_integer(t.value_type)


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or (
        pa.types.is_dictionary(t) and pa.types.is_string(t.value_type)
    )


CHECKS = {
    "integer": _is_integer,
    "list<integer>": _is_integer_list,
    "string": _is_string,
    "timestamp": pa.types.is_timestamp,
}

RAW_SCHEMAS: dict[str, dict[str, str]] = {
    "tracks.parquet": {"track_id": "integer", "albums": "list<integer>", "artists": "list<integer>", "genres": "list<integer>"},
    "catalog_names.parquet": {"id": "integer", "type": "string", "name": "string"},
    "interactions.parquet": {"user_id": "integer", "track_id": "integer", "track_seq": "integer", "started_at": "timestamp"},
}


def validate_parquet(path: Path, expected: dict[str, str]) -> None:
    """Check that ``path`` exists, is parquet, is not empty and has the expected column types."""
    if not path.exists():
        raise DataValidationError(f"{path}: file not found (expected a parquet file with columns {sorted(expected)})")
    try:
        metadata = pq.read_metadata(path)
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise DataValidationError(f"{path}: not a readable parquet file ({error})") from error
    for column, kind in expected.items():
        if column not in schema.names:
            raise DataValidationError(
                f"{path}: missing column '{column}' (expected {kind}); found columns {schema.names}"
            )
        found = schema.field(column).type
        if not CHECKS[kind](found):
            raise DataValidationError(f"{path}: column '{column}' should be {kind}, found {found}")
    if metadata.num_rows == 0:
        raise DataValidationError(f"{path}: table is empty (expected at least one row)")


def validate_raw_dir(raw_dir: Path) -> None:
    for name, expected in RAW_SCHEMAS.items():
        validate_parquet(Path(raw_dir) / name, expected)


def validate_values(path: Path, column: str, condition: bool, expected: str, found: str) -> None:
    """Raise a DataValidationError for a value-level check that failed."""
    if not condition:
        raise DataValidationError(f"{path}: column '{column}' should be {expected}, found {found}")
