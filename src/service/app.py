"""The app: the routes (``routes.py``) behind the guards and the metrics, with the bundle and store opened at start.

The lifespan builds the one ``Service`` the handlers get by ``Depends`` and closes its store at shutdown.
"""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from src.recsys.serving.bundle import ServingBundle

from . import errors
from .deps import Service
from .fast_path import FastPath
from .guards import BodyLimit, WriteToken
from .observability import Metrics, MetricsMiddleware
from .routes import router
from .settings import Settings
from .store import ListenStore, SqliteListenStore


def create_app(settings: Settings, bundle: ServingBundle | None = None, store: ListenStore | None = None) -> FastAPI:
    """The app; the bundle (unless given) is mapped and the store (unless given) opened at startup."""
    metrics = Metrics()  # before startup: the middleware below holds it

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service = Service(settings, metrics,
                          bundle if bundle is not None else ServingBundle.open(settings.bundle_dir),
                          store if store is not None else SqliteListenStore(settings.events_db, settings.synchronous,
                                                                            settings.max_online_listens))
        metrics.set_bundle(service.bundle.version)
        app.state.service = service
        try:
            yield
        finally:
            service.store.close()

    app = FastAPI(title="Music recommendations", lifespan=lifespan,
                  description="Blended offline + online recommendations, listens, similar tracks. "
                              "Errors are `{\"error\": \"...\"}` with a 4xx; writes need `Authorization: Bearer "
                              "<token>` when the server has RECSYS_WRITE_TOKEN set.")
    errors.install(app)
    app.include_router(router)
    templates = {route.endpoint: route.path for route in app.routes if hasattr(route, "endpoint")}
    app.add_middleware(FastPath)  # innermost: after the guards, inside the metrics
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(WriteToken, token=settings.write_token)
    app.add_middleware(MetricsMiddleware, metrics=metrics, route_of=templates.get)
    return app
