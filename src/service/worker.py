"""The app of one uvicorn worker process, for ``workers`` > 1 (``uvicorn.run("src.service.worker:app", factory=True)``).

uvicorn spawns each worker as a fresh interpreter that imports this by name, so the worker rereads the
settings from the environment it inherited (already checked by ``__main__`` before anything bound) and
maps the bundle itself: the mapped pages are shared through the page cache, not copied per worker.
"""
from __future__ import annotations

import gc
import logging
import os
import signal
import threading

from fastapi import FastAPI
from prometheus_client import disable_created_metrics

from .app import create_app
from .settings import load_settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s"


def app() -> FastAPI:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    disable_created_metrics()
    app_ = create_app(load_settings())
    freeze_heap()
    threading.Thread(target=stop_when_orphaned, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    return app_


def stop_when_orphaned(parent: int, every_s: float = 0.5) -> None:
    """Stop this worker gracefully (SIGTERM: queued listens are committed) once its supervisor is gone.

    A supervisor killed with ``kill -9`` cannot stop its workers, and uvicorn's do not notice: they would
    keep serving the port, unsupervised, and a restarted server could not bind it.
    """
    while os.getppid() == parent:
        threading.Event().wait(every_s)
    logging.getLogger("service").warning("supervisor %d is gone: stopping worker %d", parent, os.getpid())
    os.kill(os.getpid(), signal.SIGTERM)


def freeze_heap() -> None:
    """Move everything made at startup (~100k objects: the imported modules, the app) out of the garbage
    collector's reach: a full collection scanned them all in ~30 ms, a stall every request behind it waited for."""
    gc.collect()
    gc.freeze()
