"""Prometheus metrics: requests and latency per route template, items served per source, cold fallbacks.

Each app gets its own registry (tests build several apps in one process). Labels are route templates,
never raw paths, so the series count stays bounded; labelled children are cached per key because
``.labels()`` costs more than the increment itself.

With several worker processes (``shared_metrics_dir``), prometheus-client's multiprocess mode keeps each
process's values in files under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics``, whichever worker answers it,
sums them: the counts cover every worker, and a killed worker's counts stay.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from src.recsys.serving.blend import LIST_SOURCES, RankedList

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNMATCHED = "<unmatched>"  # no route: unknown paths, and requests refused before routing (401, 413)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others count as OTHER
# the client hung up before any answer was sent: nginx's "client closed request", so it is not a 5xx (a server fault)
CLIENT_CLOSED = 499
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client reads it when it is imported


@contextmanager
def shared_metrics_dir() -> Iterator[Path]:
    """A fresh folder for the workers' metric files, in the environment the workers inherit.

    ``$PROMETHEUS_MULTIPROC_DIR`` if set (its old files are removed: counts restart with the server),
    else a temporary folder removed at the end. Enter it before the workers start.
    """
    given = os.environ.get(MULTIPROCESS_DIR)
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="recsys-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROCESS_DIR] = str(folder)
    try:
        yield folder
    finally:
        if not given:
            shutil.rmtree(folder, ignore_errors=True)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("recsys_http_requests", "HTTP requests by method, route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("recsys_http_request_seconds", "HTTP request latency by method and route template",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.items = Counter("recsys_items_served", "Recommended items served, by mode and source",
                             ["mode", "source"], registry=self.registry)
        self.cold = Counter("recsys_cold_responses", "Recommendation responses for users without personal "
                            "recommendations (popular fallback), by mode", ["mode"], registry=self.registry)
        self.degraded = Counter("recsys_degraded_responses", "Recommendation responses built without the event "
                                "store (it was unavailable): the bundle's list alone", registry=self.registry)
        self.bundle = Gauge("recsys_bundle_info", "The serving bundle in use (value 1)", ["version"],
                            registry=self.registry, multiprocess_mode="mostrecent")  # the last worker's word
        self._children: dict[tuple, tuple] = {}
        self._version: str | None = None
        self._item_children = {(mode, code): self.items.labels(mode, source)
                               for mode in ("blended", "offline", "online") for code, source in enumerate(LIST_SOURCES)}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(method, route, str(status)),
                                              self.latency.labels(method, route))
        children[0].inc()
        children[1].observe(seconds)

    def observe_list(self, mode: str, ranked: RankedList) -> None:
        for code, count in enumerate(np.bincount(ranked.sources, minlength=len(LIST_SOURCES)).tolist()):
            if count:
                self._item_children[mode, code].inc(count)
        if ranked.cold:
            self.cold.labels(mode).inc()

    def observe_degraded(self) -> None:
        self.degraded.inc()

    def set_bundle(self, version: str) -> None:
        if self._version not in (None, version):
            if MULTIPROCESS_DIR in os.environ:  # a series cannot be removed from the files: it says 0 instead
                self.bundle.labels(self._version).set(0)
            else:
                self.bundle.remove(self._version)
        self.bundle.labels(version).set(1)
        self._version = version

    def render(self) -> bytes:
        if MULTIPROCESS_DIR not in os.environ:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker)
        return generate_latest(every_worker)


class MetricsMiddleware:
    """Pure ASGI timing of every HTTP request (cheaper than BaseHTTPMiddleware); the route comes from the
    endpoint the router put into the scope.

    A request that ends without an answer counts as 500 (an exception escaped), unless the client had
    disconnected first: then it counts as ``CLIENT_CLOSED``.
    """

    def __init__(self, app, metrics: Metrics, route_of: Callable[[object], str | None]):
        self.app = app
        self.metrics = metrics
        self.route_of = route_of

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status: int | None = None  # set when the answer starts
        disconnected = False

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        async def receive_disconnect():
            nonlocal disconnected
            message = await receive()
            disconnected = disconnected or message["type"] == "http.disconnect"
            return message

        try:
            await self.app(scope, receive_disconnect, send_status)
        finally:
            if status is None:
                status = CLIENT_CLOSED if disconnected else 500
            route = self.route_of(scope.get("endpoint")) or UNMATCHED
            method = scope["method"] if scope["method"] in METHODS else "OTHER"  # clients choose it: bound it
            self.metrics.observe_request(method, route, status, time.perf_counter() - start)
