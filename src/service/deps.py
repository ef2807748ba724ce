"""What the handlers answer from: one ``Service``, built when the app starts and handed in by ``Depends``.

Every field is set before the first request (the lifespan builds it whole), so handlers never check
for a missing bundle or store. A new bundle replaces ``app.state.service`` by a copy (``live_bundle.py``);
a request keeps the ``Service`` it got, so it answers from one bundle even across its awaits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import Depends, Request

from src.recsys.serving.bundle_reader import ServingBundle

from .observability import Metrics
from .settings import Settings
from .store import ListenStore


@dataclass(frozen=True)
class Service:
    settings: Settings
    metrics: Metrics
    bundle: ServingBundle
    store: ListenStore

    def known_track(self, track_id: int) -> bool:
        return bool(self.bundle.catalog.contains(np.array([track_id], dtype=np.int32))[0])

    def name(self, track_id: int) -> str | None:
        return self.bundle.catalog.names(np.array([track_id], dtype=np.int32))[0]


async def get_service(request: Request) -> Service:
    """The app's service (``app.state.service``, set by the lifespan, swapped whole on a new bundle).

    ``async`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a thread handoff
    per request that cost more CPU than the rest of a /health answer."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
