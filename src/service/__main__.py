"""``python -m src.service``: check the settings and the bundle, then serve with uvicorn (one process).

A bad setting, a missing bundle or a non-loopback host without a write token stops here with a
message and exit status 2, before anything binds.
"""
from __future__ import annotations

import logging
import sys

import uvicorn
from prometheus_client import disable_created_metrics

from src.recsys.serving.bundle import BundleError, ServingBundle

from .app import create_app
from .settings import SettingsError, load_settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("service")
    try:
        settings = load_settings()
        settings.check_bind()
        bundle = ServingBundle.open(settings.bundle_dir)
    except (SettingsError, BundleError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    disable_created_metrics()  # halves /metrics; the *_created series are not used
    log.info("bundle %s from %s (%s users with recommendations); events in %s (synchronous=%s)", bundle.version,
             settings.bundle_dir, bundle.manifest["counts"]["users_with_recommendations"], settings.events_db,
             settings.synchronous)
    app = create_app(settings, bundle)
    del bundle  # the app alone holds it, so a live switch unmaps it (live_bundle.py)
    uvicorn.run(app, host=settings.host, port=settings.port, loop="uvloop", http="httptools",
                workers=1, access_log=False, log_level="info", timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
