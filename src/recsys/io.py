"""Atomic file output, params loading and stage logging shared by every stage.

Every writer goes through a temporary file in the target folder followed by
``os.replace``, so an interrupted stage never leaves a half-written output.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

PARAMS_FILE = Path("params.yaml")

Progress = Callable[[int, int], None]  # ``progress(done, total)``: long loops report through it


class DataValidationError(ValueError):
    """Bad input data; the message names the file, the column, what was expected and what was found."""


def load_params(path: Path | str = PARAMS_FILE) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def get_logger(name: str) -> logging.Logger:
    """Stage logger printing timestamps to stderr (DVC shows it live)."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    return logging.getLogger(name)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it into place only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_parquet(frame: pd.DataFrame | pa.Table, target: Path | str) -> None:
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_csv(frame: pd.DataFrame, target: Path | str) -> None:
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False)


def write_json(payload: dict[str, Any], target: Path | str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=_json_default) + "\n", encoding="utf-8")


def _json_default(value: Any) -> Any:
    """Let numpy scalars and timestamps land in JSON as plain numbers and strings."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@contextlib.contextmanager
def timed(logger: logging.Logger, what: str) -> Iterator[None]:
    """Log the start and the duration of one step, so a long run is never silent."""
    began = time.perf_counter()
    logger.info("%s ...", what)
    yield
    logger.info("%s: done in %.1fs", what, time.perf_counter() - began)


@contextlib.contextmanager
def atomic_directory(target: Path | str) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``target``; swap it in only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes an owner-only folder
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def progress_logger(logger: logging.Logger, what: str, every: float = 0.1) -> Progress:
    """A ``progress(done, total)`` callback that logs about every ``every`` share of the work."""
    began = time.perf_counter()
    next_share = [every]

    def report(done: int, total: int) -> None:
        if total and (done / total >= next_share[0] or done == total):
            elapsed = time.perf_counter() - began
            logger.info("%s: %d/%d (%.0f%%), %.0fs elapsed", what, done, total, 100 * done / total, elapsed)
            next_share[0] = (int(done / total / every) + 1) * every

    return report
