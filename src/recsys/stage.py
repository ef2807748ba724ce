"""Common entry point of every DVC stage: params, logging, timing and clean failure."""
from __future__ import annotations

import functools
import logging
import resource
import sys
import time
from typing import Any, Callable

from .io import DataValidationError, get_logger, load_params


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def stage(name: str) -> Callable[[Callable[[dict[str, Any], logging.Logger], None]], Callable[[], None]]:
    """Wrap ``fn(params, logger)`` as a stage: bad input exits 1 with one clear message, nothing written."""

    def decorate(fn: Callable[[dict[str, Any], logging.Logger], None]) -> Callable[[], None]:
        @functools.wraps(fn)
        def main() -> None:
            logger = get_logger(name)
            began = time.perf_counter()
            try:
                fn(load_params(), logger)
            except DataValidationError as error:
                logger.error("invalid input: %s", error)
                sys.exit(1)
            logger.info("stage %s finished in %.1fs, peak RSS %.2f GiB", name, time.perf_counter() - began, peak_rss_gib())

        return main

    return decorate
