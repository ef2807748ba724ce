"""Request and response shapes: the request body is validated here; response models document the API.

Handlers return orjson bytes directly (no second validation pass), so the response models below are
what the OpenAPI page shows and what the tests check the JSON against.
"""
from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

import orjson
from fastapi import Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError, Field, StrictFloat, StrictInt, StrictStr, field_validator

MAX_ID = 2**31 - 1  # ids are int32 in the bundle
MAX_FUTURE = timedelta(days=1)  # clock skew allowance: a listen later than this is a client bug
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)

UserId = Annotated[int, Path(ge=0, le=MAX_ID, description="user id (non-negative integer)")]
TrackId = Annotated[int, Path(ge=0, le=MAX_ID, description="track id (non-negative integer)")]
K = Annotated[int, Query(ge=1, le=100, description="how many items (1..100)")]
Limit = Annotated[int, Query(ge=1, le=1000, description="how many listens (1..1000)")]


class ListenIn(BaseModel):
    """A listen to record; ``timestamp`` defaults to now."""

    track_id: Annotated[int, Field(strict=True, ge=0, le=MAX_ID, description="a track id of the catalog")]
    timestamp: StrictStr | StrictInt | StrictFloat | None = Field(
        None, description="when it was heard: ISO 8601 (UTC if no offset) or epoch seconds; at most 1 day ahead")

    @field_validator("timestamp")
    @classmethod
    def _to_microseconds(cls, value: str | int | float | None) -> int | None:
        return None if value is None else to_microseconds(value)

    model_config = {"extra": "forbid",  # a misspelt field ("timestmap") is an error, not silently dropped
                    "json_schema_extra": {"examples": [{"track_id": 123, "timestamp": "2022-12-20T10:00:00Z"}]}}


def parse_listen(body: bytes) -> ListenIn:
    """The listen in a request body, read as JSON whatever the Content-Type (the body is JSON or wrong)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error",
                                       "input": body, "ctx": {"error": str(error)}}]) from None
    try:
        return ListenIn.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError([{**item, "loc": ("body", *item["loc"])} for item in error.errors()]) from None


def to_microseconds(value: str | int | float, now: float | None = None) -> int:
    """Epoch microseconds of an ISO 8601 string or epoch seconds, refusing times before 1970 or far ahead."""
    now = time.time() if now is None else now
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected ISO 8601 (e.g. 2022-12-20T10:00:00Z) or epoch seconds, got {value!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        micros = (moment - EPOCH) // _US
    else:
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number of epoch seconds, got {value!r}")
        if value > 2 * now:  # far beyond any sensible instant: refuse before scaling it
            raise ValueError(f"{value!r} is more than {MAX_FUTURE.days} day in the future")
        micros = round(value * 1_000_000)
    if micros < 0:
        raise ValueError(f"{value!r} is before 1970-01-01")
    if micros > (now + MAX_FUTURE.total_seconds()) * 1_000_000:
        raise ValueError(f"{value!r} is more than {MAX_FUTURE.days} day in the future (server time "
                         f"{iso(round(now * 1_000_000))})")
    return micros


def iso(micros: int) -> str:
    """``2022-12-20T10:00:00Z`` (fractional seconds only when present)."""
    return (EPOCH + timedelta(microseconds=micros)).isoformat().replace("+00:00", "Z")


Source = Literal["offline", "online", "popular"]


class Item(BaseModel):
    track_id: int
    name: str | None
    source: Source = Field(description="which list placed it: offline recommendations, online candidates, popular")
    score: float = Field(description="the source's own score: ranker score, summed similarity, or listeners")


class Recommendations(BaseModel):
    user_id: int
    mode: Literal["blended", "offline", "online"]
    k: int
    cold: bool = Field(description="the user has no personal recommendations (popular stands in)")
    bundle_version: str
    items: list[Item]
    degraded: str | None = Field(None, description="present only when the event store could not be read: the "
                                 "list comes from the bundle alone (online listens left out); says why")


class ListenOut(BaseModel):
    id: int
    user_id: int
    track_id: int
    timestamp: str


class ListenItem(BaseModel):
    track_id: int
    name: str | None
    timestamp: str


class Listens(BaseModel):
    user_id: int
    listens: list[ListenItem] = Field(description="most recent first (by timestamp, then insertion order)")


class SimilarItem(BaseModel):
    track_id: int
    name: str | None
    score: float


class Similar(BaseModel):
    track_id: int
    name: str | None
    items: list[SimilarItem]


class Health(BaseModel):
    status: Literal["ok"]
    bundle_version: str
    blend: dict[str, str | int | float] = Field(
        description="the blend settings the bundle carries (learned by the `serving` stage for its data)")


class Ready(BaseModel):
    ready: bool
    bundle_version: str
    listens_store: str


class ErrorBody(BaseModel):
    error: str = Field(description="what was wrong: the field, what was expected and what was found")
