"""``python -m src.service``: check the settings and the bundle, then serve with uvicorn.

A bad setting, a missing bundle or a non-loopback host without a write token stops here with a
message and exit status 2, before anything binds. With ``workers`` > 1 this process binds the port and
supervises that many worker processes (``worker.py``), restarting any that dies; they share the port,
the mapped bundle (page cache) and the events database, and write their metrics to one folder.
"""
from __future__ import annotations

import asyncio
import logging
import sys

import uvicorn
from prometheus_client import disable_created_metrics

from src.recsys.serving.bundle_reader import BundleError, ServingBundle

from .app import create_app
from .observability import shared_metrics_dir
from .settings import SettingsError, load_settings, redacted
from .store import StoreSchemaError, StoreUnavailable, prepare_store
from .worker import LOG_FORMAT, freeze_heap


def main() -> int:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    log = logging.getLogger("service")
    try:
        settings = load_settings()
        settings.check_bind()
        bundle = ServingBundle.open(settings.bundle_dir)
        asyncio.run(prepare_store(settings))  # schema (and SQLite's WAL mode) set once, before any worker
    except (SettingsError, BundleError, StoreSchemaError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StoreUnavailable as error:
        print(f"error: the event store {redacted(settings.store_url)} cannot be opened: {error}", file=sys.stderr)
        return 2
    disable_created_metrics()  # halves /metrics; the *_created series are not used
    log.info("bundle %s from %s (%s users with recommendations); events in %s (synchronous=%s)", bundle.version,
             settings.bundle_dir, bundle.manifest["counts"]["users_with_recommendations"], redacted(settings.store_url),
             settings.synchronous)
    options = dict(host=settings.host, port=settings.port, loop="uvloop", http="httptools", access_log=False,
                   log_level="info", timeout_graceful_shutdown=5)
    if settings.workers == 1:
        app = create_app(settings, bundle)
        del bundle  # the app alone holds it
        freeze_heap()
        uvicorn.run(app, workers=1, **options)
        return 0
    del bundle  # checked; each worker maps its own, and the supervisor keeps no mapping of a bundle
    log.info("%d worker processes", settings.workers)
    with shared_metrics_dir():
        uvicorn.run("src.service.worker:app", factory=True, workers=settings.workers, **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
