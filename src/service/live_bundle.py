"""Live bundle switch: each server process watches the bundle folder and swaps in a new bundle without a restart.

``dvc repro`` writes ``models/serving`` into a temporary folder and renames it into place (and DVC may
then relink its files one by one). A running process keeps its memory maps of the old files: they
stay valid after the rename or unlink, so requests in flight finish on the old bundle.

Why polling, not SIGHUP: each worker process needs to switch on its own, and uvicorn's supervisor
already takes SIGHUP to restart workers. A poll is one ``scandir`` of ~20 entries every
``interval_s`` (tens of microseconds), off the request path, and needs no signal plumbing or deploy step.

The rule: a folder whose listing (names, inodes, sizes, mtimes) changed is opened once it has stayed
the same for one more poll (so a folder still being written is not opened), in a thread (opening
checks the content hash, ~1 s at full size, and must not stall the event loop). A bundle with the
version being served is not reopened. A bundle that fails to open is logged and counted, the old one
keeps serving, and it is retried only when the folder changes again.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import AsyncIterator, Callable

from src.recsys.serving.bundle_format import MANIFEST
from src.recsys.serving.bundle_reader import BundleError, ServingBundle

log = logging.getLogger("service.bundle")
POLL_S = 0.5  # a new bundle is served within 2 polls + its open (hash check) after it lands
Signature = tuple


def signature(folder: Path) -> Signature | None:
    """What changes whenever a file of the folder is replaced or rewritten; None while there is no manifest."""
    try:
        with os.scandir(folder) as entries:
            listing = sorted((entry.name, *_stat_key(entry.stat(follow_symlinks=True))) for entry in entries)
        return (_stat_key(os.stat(folder)), tuple(listing)) if any(row[0] == MANIFEST for row in listing) else None
    except OSError:  # missing (between the stage's rmtree and rename) or a file vanished while listing
        return None


def _stat_key(stat: os.stat_result) -> tuple[int, int, int]:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def manifest_version(folder: Path) -> str | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable: the full open names the problem


class BundleWatcher:
    """Polls ``folder`` and calls ``switch(bundle)`` (on the event loop) with each new bundle that opens cleanly."""

    def __init__(self, folder: Path, current_version: Callable[[], str], switch: Callable[[ServingBundle], None],
                 failed: Callable[[str], None] = lambda message: None, interval_s: float = POLL_S):
        self.folder = Path(folder)
        self.current_version = current_version
        self.switch = switch
        self.failed = failed
        self.interval_s = interval_s
        self._seen: Signature | None = None  # the listing at the last poll
        self._handled: Signature | None = None  # the last settled listing acted on (switched, same version or failed)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.poll()
            except Exception:  # never let the watcher die: the next poll must still run
                log.exception("bundle watcher: unexpected error")

    async def poll(self) -> None:
        """One look at the folder; opens and switches when a changed listing has settled."""
        seen, self._seen = self._seen, signature(self.folder)
        if self._seen is None or self._seen != seen or self._seen == self._handled:
            return
        self._handled = self._seen
        version = manifest_version(self.folder)
        if version is not None and version == self.current_version():
            return
        began = time.perf_counter()
        try:
            bundle = await asyncio.to_thread(ServingBundle.open, self.folder)
        except Exception as error:  # a BundleError names the problem; nothing else may stop the serving either
            why = str(error) if isinstance(error, BundleError) else repr(error)
            message = f"new bundle in {self.folder} not served, keeping {self.current_version()}: {why}"
            log.error("%s", message)
            self.failed(message)
            return
        if signature(self.folder) != self._handled:
            log.info("bundle folder %s changed while it was opened; looking again", self.folder)
            self._handled = None
            return
        old = self.current_version()
        self.switch(bundle)
        log.info("bundle switched %s -> %s in %.2f s (opened and hash-checked)", old, bundle.version,
                 time.perf_counter() - began)


@contextlib.asynccontextmanager
async def watching(watcher: BundleWatcher | None) -> AsyncIterator[None]:
    """Run ``watcher`` (None: nothing) for the duration of the block; stopped before the block's cleanup."""
    task = asyncio.create_task(watcher.run()) if watcher is not None else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
