"""The HTTP API's handlers: recommendations, listens, similar tracks, health and metrics.

Lists come only from ``src.recsys.serving.blend.blend_for_user`` (the code the replay evaluation scores);
a handler fetches the user's online listens, calls it, and shapes the JSON. Handlers are ``async``
and do no blocking I/O beyond bounded reads: blend_for_user is ~0.05-0.2 ms of numpy, a store read is one
index range of at most ``max_online_listens`` rows, and writes are group-committed by the store.
When the event store cannot answer, recommendations still come from the bundle (the offline list, marked
``degraded``), while listen reads and writes answer 503: a list without the latest listens beats none.
"""
from __future__ import annotations

import time

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from starlette.responses import PlainTextResponse, Response

from src.recsys.serving.blend import LIST_SOURCES, blend_for_user

from .deps import Service, ServiceDep
from .errors import error_response, json_response
from .schemas import (K, ErrorBody, Health, Limit, ListenIn, ListenOut, Listens, Ready, Recommendations, Similar,
                      TrackId, UserId, iso, parse_listen)
from .store import StoreUnavailable

router = APIRouter()
NO_LISTENS = np.empty(0, dtype=np.int32)
_ERRORS = {status: {"model": ErrorBody} for status in (400, 401, 404, 413, 422)}


async def _recommendations(service: Service, user_id: int, k: int, mode: str) -> Response:
    """The list for ``user_id``; without the event store (down), the bundle's list alone, marked ``degraded``."""
    try:
        heard, degraded = await service.store.heard(user_id), None
    except StoreUnavailable as error:
        service.metrics.observe_degraded()
        heard, degraded = NO_LISTENS, f"event store unavailable ({error}): online listens left out"
    ranked = blend_for_user(service.bundle, user_id, heard, k, service.bundle.blend, mode)
    service.metrics.observe_list(mode, ranked)
    items = [{"track_id": track, "name": name, "source": LIST_SOURCES[source], "score": score}
             for track, name, source, score in zip(ranked.track_ids.tolist(), service.bundle.catalog.names(ranked.track_ids),
                                                   ranked.sources.tolist(),
                                                   ranked.scores.astype(np.float64).round(6).tolist())]
    body = {"user_id": user_id, "mode": mode, "k": k, "cold": ranked.cold,
            "bundle_version": service.bundle.version, "items": items}
    return json_response(body if degraded is None else {**body, "degraded": degraded})


@router.get("/users/{user_id}/recommendations", response_model=Recommendations, responses=_ERRORS,
            tags=["recommendations"], summary="Blended recommendations (offline + online, popular backfill)")
async def blended(service: ServiceDep, user_id: UserId, k: K = 10):
    return await _recommendations(service, user_id, k, "blended")


@router.get("/users/{user_id}/recommendations/offline", response_model=Recommendations, responses=_ERRORS,
            tags=["recommendations"], summary="Offline recommendations only (debugging view)")
async def offline(service: ServiceDep, user_id: UserId, k: K = 10):
    return await _recommendations(service, user_id, k, "offline")


@router.get("/users/{user_id}/recommendations/online", response_model=Recommendations, responses=_ERRORS,
            tags=["recommendations"], summary="Online candidates only (debugging view)")
async def online(service: ServiceDep, user_id: UserId, k: K = 10):
    return await _recommendations(service, user_id, k, "online")


@router.post("/users/{user_id}/listens", status_code=201, response_model=ListenOut, responses=_ERRORS,
             tags=["listens"], summary="Record a listen (answered once it is committed)",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": ListenIn.model_json_schema()}}}})
async def record_listen(service: ServiceDep, user_id: UserId, request: Request):
    listen = parse_listen(await request.body())
    if not service.known_track(listen.track_id):
        raise HTTPException(422, f"body track_id: unknown track {listen.track_id} (not in the catalog)")
    return await _store_listen(service, user_id, listen)


async def _store_listen(service: Service, user_id: int, listen: ListenIn) -> Response:
    """Append a checked listen; 201 once it is committed."""
    ts_us = listen.timestamp if listen.timestamp is not None else time.time_ns() // 1000
    stored = await service.store.append(user_id, listen.track_id, ts_us)
    return json_response({"id": stored.id, "user_id": stored.user_id, "track_id": stored.track_id,
                          "timestamp": iso(stored.ts_us)}, 201)


@router.get("/users/{user_id}/listens", response_model=Listens, responses=_ERRORS, tags=["listens"],
            summary="The user's latest online listens, most recent first")
async def latest_listens(service: ServiceDep, user_id: UserId, limit: Limit = 10):
    rows = await service.store.latest(user_id, limit)
    names = service.bundle.catalog.names(np.array([row[0] for row in rows], dtype=np.int32))
    return json_response({"user_id": user_id, "listens": [
        {"track_id": track, "name": name, "timestamp": iso(ts_us)} for (track, ts_us), name in zip(rows, names)]})


@router.get("/tracks/{track_id}/similar", response_model=Similar, responses=_ERRORS, tags=["tracks"],
            summary="Tracks similar to a track, most similar first")
async def similar(service: ServiceDep, track_id: TrackId, k: K = 10):
    if not service.known_track(track_id):
        raise HTTPException(404, f"track_id: unknown track {track_id} (not in the catalog)")
    items, scores = service.bundle.similar.row(track_id)
    items, scores = items[:k], scores[:k]
    names = service.bundle.catalog.names(items)
    return json_response({"track_id": track_id, "name": service.name(track_id), "items": [
        {"track_id": track, "name": name, "score": score}
        for track, name, score in zip(items.tolist(), names, scores.astype(np.float64).round(6).tolist())]})


@router.get("/health", response_model=Health, tags=["operations"], summary="Liveness and the bundle version")
async def health(service: ServiceDep):
    return json_response({"status": "ok", "bundle_version": service.bundle.version, "blend": service.bundle.blend.to_dict()})


@router.get("/ready", response_model=Ready, responses={503: {"model": ErrorBody}}, tags=["operations"],
            summary="Ready to serve: bundle mapped and event store reachable")
async def ready(service: ServiceDep):
    if not await service.store.ready():
        return error_response(503, "not ready: the event store is not reachable")
    return json_response({"ready": True, "bundle_version": service.bundle.version,
                          "listens_store": type(service.store).__name__})


@router.get("/metrics", tags=["operations"], summary="Prometheus metrics (text format)",
            response_class=PlainTextResponse)  # documents text/plain, which it serves (not JSON)
async def metrics(service: ServiceDep):
    return Response(service.metrics.render(), media_type=service.metrics.content_type)
