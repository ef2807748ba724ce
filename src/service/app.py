"""The app: the routes (``routes.py``) behind the guards and the metrics, with the bundle and store opened at start.

The lifespan builds the ``Service`` the handlers get by ``Depends``, watches the bundle folder
(``live_bundle.py``: a new bundle replaces ``app.state.service`` by a copy holding it), and closes the
store at shutdown.
"""
from __future__ import annotations

import dataclasses
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import Counter

from src.recsys.serving.bundle_reader import ServingBundle

from . import errors
from .deps import Service
from .fast_path import FastPath
from .guards import BodyLimit, WriteToken
from .live_bundle import POLL_S, BundleWatcher, watching
from .methods import add_head_routes
from .observability import Metrics, MetricsMiddleware
from .routes import router
from .settings import Settings
from .store import ListenStore, open_store


def create_app(settings: Settings, bundle: ServingBundle | None = None, store: ListenStore | None = None,
               bundle_poll_s: float | None = POLL_S) -> FastAPI:
    """The app; the bundle (unless given) is mapped and the store (unless given) opened at startup.

    Every ``bundle_poll_s`` the app looks for a new bundle in ``settings.bundle_dir`` (None: never).
    """
    metrics = Metrics()  # before startup: the middleware below holds it
    switch_failures = Counter("recsys_bundle_switch_failures", "New bundles that failed to open (the old one "
                              "kept serving)", registry=metrics.registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        nonlocal bundle
        service = Service(settings, metrics,
                          bundle if bundle is not None else ServingBundle.open(settings.bundle_dir),
                          store if store is not None else await open_store(settings))
        metrics.set_bundle(service.bundle.version)
        app.state.service = service
        bundle = service = None  # only app.state holds the bundle: a switch unmaps the old one (and frees its disk)

        def switch(new: ServingBundle) -> None:
            """One reference swap: a request holds the ``Service`` it started with, old bundle included."""
            app.state.service = dataclasses.replace(app.state.service, bundle=new)
            metrics.set_bundle(new.version)

        watcher = BundleWatcher(settings.bundle_dir, lambda: app.state.service.bundle.version, switch,
                                lambda message: switch_failures.inc(), bundle_poll_s) if bundle_poll_s else None
        try:
            async with watching(watcher):
                yield
        finally:
            await app.state.service.store.aclose()

    app = FastAPI(title="Music recommendations", lifespan=lifespan,
                  description="Blended offline + online recommendations, listens, similar tracks. "
                              "Errors are `{\"error\": \"...\"}` with a 4xx; writes need `Authorization: Bearer "
                              "<token>` when the server has RECSYS_WRITE_TOKEN set.")
    errors.install(app)
    app.include_router(router)
    add_head_routes(app)
    templates = {route.endpoint: route.path for route in app.routes if hasattr(route, "endpoint")}
    app.add_middleware(FastPath)  # innermost: after the guards, inside the metrics
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(WriteToken, token=settings.write_token)
    app.add_middleware(MetricsMiddleware, metrics=metrics, route_of=templates.get)
    return app
