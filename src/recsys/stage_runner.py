"""Common entry point of every DVC stage: params, logging, timing and clean failure."""
from __future__ import annotations

import functools
import resource
import sys
import time
from typing import Callable

from .config import Config, ConfigError
from .io import DataValidationError, get_logger, load_params


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def stage(name: str, config: type[Config] | None = None) -> Callable[[Callable[..., None]], Callable[[], None]]:
    """Wrap ``fn(cfg, logger)`` (``fn(logger)`` for a stage without params) as a stage.

    ``cfg`` is ``config.from_params(params.yaml)``, validated before ``fn`` reads any data. A bad parameter
    (``ConfigError``, also raised by ``fn`` when a value does not fit the data) or bad input data
    (``DataValidationError``) exits 1 with one clear message, nothing written.
    """

    def decorate(fn: Callable[..., None]) -> Callable[[], None]:
        @functools.wraps(fn)
        def main() -> None:
            logger = get_logger(name)
            began = time.perf_counter()
            try:
                if config is None:
                    fn(logger)
                else:
                    fn(config.from_params(load_params()), logger)
            except ConfigError as error:
                logger.error("invalid parameter: %s", error)
                sys.exit(1)
            except DataValidationError as error:
                logger.error("invalid input: %s", error)
                sys.exit(1)
            logger.info("stage %s finished in %.1fs, peak RSS %.2f GiB", name, time.perf_counter() - began, peak_rss_gib())

        main.config = config  # what tests/test_config.py compares with dvc.yaml's params
        return main

    return decorate
