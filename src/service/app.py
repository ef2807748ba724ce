"""The HTTP API: recommendations, listens, similar tracks, health and metrics.

Lists come only from ``src.recsys.serving.blend.recommend`` (the code the replay evaluation scores);
this module fetches the user's online listens, calls it, and shapes the JSON. Handlers are ``async``
and do no blocking I/O beyond bounded reads: recommend is ~0.05-0.2 ms of numpy, a store read is one
index range of at most ``max_online_listens`` rows, and writes are committed by the store's writer thread.
"""
from __future__ import annotations

import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from starlette.responses import Response

from src.recsys.serving.blend import SOURCES, recommend
from src.recsys.serving.bundle import ServingBundle

from . import errors
from .guards import BodyLimit, WriteToken
from .observability import Metrics, MetricsMiddleware
from .schemas import (K, Health, Limit, ListenIn, ListenOut, Listens, Ready, Recommendations, Similar, TrackId,
                      UserId, ErrorBody, iso, parse_listen)
from .settings import Settings
from .store import ListenStore, SqliteListenStore

_ERRORS = {status: {"model": ErrorBody} for status in (400, 401, 404, 413, 422)}


@dataclass
class Service:
    """What the handlers answer from; bundle and store are set when the app starts."""

    settings: Settings
    metrics: Metrics
    bundle: ServingBundle | None = None
    store: ListenStore | None = None

    async def recommendations(self, user_id: int, k: int, mode: str) -> Response:
        heard = await self.store.heard(user_id)
        ranked = recommend(self.bundle, user_id, heard, k, self.settings.blend, mode)
        self.metrics.observe_list(mode, ranked)
        items = [{"track_id": track, "name": name, "source": SOURCES[source], "score": score}
                 for track, name, source, score in zip(ranked.track_ids.tolist(), self.bundle.catalog.names(ranked.track_ids),
                                                       ranked.sources.tolist(),
                                                       ranked.scores.astype(np.float64).round(6).tolist())]
        return errors.json_response({"user_id": user_id, "mode": mode, "k": k, "cold": ranked.cold,
                                     "bundle_version": self.bundle.version, "items": items})

    def known_track(self, track_id: int) -> bool:
        return bool(self.bundle.catalog.contains(np.array([track_id], dtype=np.int32))[0])

    def name(self, track_id: int) -> str | None:
        return self.bundle.catalog.names(np.array([track_id], dtype=np.int32))[0]


def create_app(settings: Settings, bundle: ServingBundle | None = None, store: ListenStore | None = None) -> FastAPI:
    """The app; the bundle (unless given) is mapped and the store (unless given) opened at startup."""
    service = Service(settings, Metrics())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.bundle = bundle if bundle is not None else ServingBundle.open(settings.bundle_dir)
        service.store = store if store is not None else SqliteListenStore(settings.events_db, settings.synchronous,
                                                                                settings.max_online_listens)
        service.metrics.set_bundle(service.bundle.version)
        try:
            yield
        finally:
            service.store.close()

    app = FastAPI(title="Music recommendations", lifespan=lifespan,
                  description="Blended offline + online recommendations, listens, similar tracks. "
                              "Errors are `{\"error\": \"...\"}` with a 4xx; writes need `Authorization: Bearer "
                              "<token>` when the server has RECSYS_WRITE_TOKEN set.")
    app.state.service = service
    errors.install(app)

    @app.get("/users/{user_id}/recommendations", response_model=Recommendations, responses=_ERRORS,
             tags=["recommendations"], summary="Blended recommendations (offline + online, popular backfill)")
    async def blended(user_id: UserId, k: K = 10):
        return await service.recommendations(user_id, k, "blended")

    @app.get("/users/{user_id}/recommendations/offline", response_model=Recommendations, responses=_ERRORS,
             tags=["recommendations"], summary="Offline recommendations only (debugging view)")
    async def offline(user_id: UserId, k: K = 10):
        return await service.recommendations(user_id, k, "offline")

    @app.get("/users/{user_id}/recommendations/online", response_model=Recommendations, responses=_ERRORS,
             tags=["recommendations"], summary="Online candidates only (debugging view)")
    async def online(user_id: UserId, k: K = 10):
        return await service.recommendations(user_id, k, "online")

    @app.post("/users/{user_id}/listens", status_code=201, response_model=ListenOut, responses=_ERRORS,
              tags=["listens"], summary="Record a listen (answered once it is committed)",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": ListenIn.model_json_schema()}}}})
    async def record_listen(user_id: UserId, request: Request):
        listen = parse_listen(await request.body())
        if not service.known_track(listen.track_id):
            raise HTTPException(422, f"body track_id: unknown track {listen.track_id} (not in the catalog)")
        ts_us = listen.timestamp if listen.timestamp is not None else time.time_ns() // 1000
        stored = await service.store.append(user_id, listen.track_id, ts_us)
        return errors.json_response({"id": stored.id, "user_id": stored.user_id, "track_id": stored.track_id,
                                     "timestamp": iso(stored.ts_us)}, 201)

    @app.get("/users/{user_id}/listens", response_model=Listens, responses=_ERRORS, tags=["listens"],
             summary="The user's latest online listens, most recent first")
    async def latest_listens(user_id: UserId, limit: Limit = 10):
        rows = await service.store.latest(user_id, limit)
        names = service.bundle.catalog.names(np.array([row[0] for row in rows], dtype=np.int32))
        return errors.json_response({"user_id": user_id, "listens": [
            {"track_id": track, "name": name, "timestamp": iso(ts_us)} for (track, ts_us), name in zip(rows, names)]})

    @app.get("/tracks/{track_id}/similar", response_model=Similar, responses=_ERRORS, tags=["tracks"],
             summary="Tracks similar to a track, most similar first")
    async def similar(track_id: TrackId, k: K = 10):
        if not service.known_track(track_id):
            raise HTTPException(404, f"track_id: unknown track {track_id} (not in the catalog)")
        items, scores = service.bundle.similar.row(track_id)
        items, scores = items[:k], scores[:k]
        names = service.bundle.catalog.names(items)
        return errors.json_response({"track_id": track_id, "name": service.name(track_id), "items": [
            {"track_id": track, "name": name, "score": score}
            for track, name, score in zip(items.tolist(), names, scores.astype(np.float64).round(6).tolist())]})

    @app.get("/health", response_model=Health, tags=["operations"], summary="Liveness and the bundle version")
    async def health():
        return errors.json_response({"status": "ok", "bundle_version": service.bundle.version})

    @app.get("/ready", response_model=Ready, responses={503: {"model": ErrorBody}}, tags=["operations"],
             summary="Ready to serve: bundle mapped and event store reachable")
    async def ready():
        if service.bundle is None or service.store is None or not service.store.ready():
            return errors.error_response(503, "not ready: the event store is not reachable")
        return errors.json_response({"ready": True, "bundle_version": service.bundle.version,
                                     "listens_store": type(service.store).__name__})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (text format)")
    async def metrics():
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    templates = {route.endpoint: route.path for route in app.routes if hasattr(route, "endpoint")}
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(WriteToken, token=settings.write_token)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics, route_of=templates.get)
    return app
