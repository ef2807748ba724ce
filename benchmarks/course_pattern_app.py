"""The reference for the load test: the "course pattern" recommendation service.

This is how public course solutions serve recommendations: load the offline recommendations and the
similar-tracks table into pandas DataFrames at startup, and per request filter them with a boolean
mask (``df[df["user_id"] == user_id]``, a scan of every row); online listens go into a Python dict of
lists (lost on restart); a user without recommendations gets the top-popular chart; the online
candidates (similar tracks of the last listens) alternate with the offline ones. It reads the same
bundle as the real service, so both answer from the same data, but it does not drop already-heard
tracks (course solutions do not load the 180M-row history).

It exists only to be measured against, by `benchmarks/service_load.py`:

    python benchmarks/course_pattern_app.py --bundle /tmp/fullbundle --port 8001
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.recsys.serving.bundle_reader import ServingBundle  # noqa: E402
from src.recsys.serving.ragged import RaggedTable  # noqa: E402

TOP_POPULAR = 100
RECENT_LISTENS = 3


def long_table(table: RaggedTable, key: str, item: str) -> pd.DataFrame:
    """A ragged table as the long DataFrame a course solution reads from parquet (key, item, score)."""
    keys = np.repeat(np.asarray(table.keys), np.diff(np.asarray(table.offsets)))
    return pd.DataFrame({key: keys, item: np.asarray(table.items), "score": np.asarray(table.scores)})


class Recommender:
    """The DataFrames and the in-memory event dict, with the course's per-request filtering."""

    def __init__(self, bundle_dir: Path):
        bundle = ServingBundle.open(bundle_dir)
        self.recs = long_table(bundle.offline, "user_id", "track_id")
        self.similar = long_table(bundle.similar, "track_id_1", "track_id_2")
        self.top_popular = pd.DataFrame({"track_id": np.asarray(bundle.popular[:TOP_POPULAR])})
        self.events: dict[int, list[int]] = defaultdict(list)

    def offline(self, user_id: int, k: int) -> list[int]:
        rows = self.recs[self.recs["user_id"] == user_id]
        if rows.empty:
            rows = self.top_popular
        return rows["track_id"].head(k).tolist()

    def online(self, user_id: int, k: int) -> list[int]:
        recent = self.events.get(user_id, [])[-RECENT_LISTENS:][::-1]
        if not recent:
            return []
        rows = pd.concat([self.similar[self.similar["track_id_1"] == track] for track in recent])
        rows = rows.sort_values("score", ascending=False).drop_duplicates("track_id_2")
        return rows["track_id_2"].head(k).tolist()

    def blended(self, user_id: int, k: int) -> list[int]:
        """Online and offline items alternately (online first), each track once."""
        online, offline = self.online(user_id, k), self.offline(user_id, k)
        merged: list[int] = []
        for pair in zip(online + [None] * k, offline + [None] * k):
            merged.extend(track for track in pair if track is not None and track not in merged)
        return merged[:k]


class ListenIn(BaseModel):
    track_id: int
    timestamp: float | None = None


def create_app(bundle_dir: Path) -> FastAPI:
    state: dict[str, Recommender] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        state["rec"] = Recommender(bundle_dir)
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> dict:
        return {"status": "ready"}

    @app.get("/users/{user_id}/recommendations")
    def recommendations(user_id: int, k: int = 10) -> dict:
        return {"user_id": user_id, "recommendations": state["rec"].blended(user_id, k)}

    @app.post("/users/{user_id}/listens", status_code=201)
    def add_listen(user_id: int, listen: ListenIn) -> dict:
        state["rec"].events[user_id].append(listen.track_id)
        return {"user_id": user_id, "track_id": listen.track_id}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True, help="serving bundle folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.bundle), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
