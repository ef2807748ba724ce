"""The online event store: users' listens, written durably and read latest-first.

``ListenStore`` is what the app needs; ``SqliteListenStore`` is the embedded default. One writer
thread owns the write connection and commits everything queued in one transaction (group commit),
then resolves each request's future: the event loop never waits on disk, and an acknowledged listen is
committed. Reads run inline on a second connection (WAL lets them proceed beside the writer); they are
one seek in a covering index, tens of microseconds.

Durability: WAL with ``synchronous=NORMAL`` keeps every committed listen across a killed process
(``kill -9``); ``FULL`` also syncs each commit to disk, for power loss, at a few ms per commit.

A request reads at most ``max_listens`` of a user's latest listens: a user (or a bot) with 300k listens
costs the same bounded read as anybody else and the event loop never stalls; listens older than that
no longer count as heard (train history always does).
"""
from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS listens (
    id INTEGER PRIMARY KEY,          -- insertion order: breaks ties between equal timestamps
    user_id INTEGER NOT NULL,
    track_id INTEGER NOT NULL,
    ts_us INTEGER NOT NULL            -- when the user listened, microseconds since the epoch (UTC)
);
-- "latest listens of a user" is one range scan of this index, which also holds track_id (covering)
CREATE INDEX IF NOT EXISTS listens_latest ON listens (user_id, ts_us DESC, id DESC, track_id);
"""
_LATEST = "SELECT track_id, ts_us FROM listens WHERE user_id = ? ORDER BY ts_us DESC, id DESC LIMIT ?"
_HEARD = "SELECT track_id FROM listens WHERE user_id = ? ORDER BY ts_us DESC, id DESC LIMIT ?"
WRITE_TIMEOUT_S = 30.0  # an acknowledgement later than this is answered 503 (the listen may still commit)
_INSERT = "INSERT INTO listens (user_id, track_id, ts_us) VALUES (?, ?, ?)"
_STOP = None


class StoreUnavailable(RuntimeError):
    """The store cannot take the request now (shutting down, locked, failing); the client may retry.

    Every backend error leaves a store as this (or ``StoreClosed``), so callers handle one exception
    whatever the backend.
    """


class StoreClosed(StoreUnavailable):
    """The store was closed (the server is shutting down): nothing more is read or written."""


@dataclass(frozen=True)
class Listen:
    id: int
    user_id: int
    track_id: int
    ts_us: int


class ListenStore(Protocol):
    """What the service needs from an event store (another backend implements these five).

    A backend failure in any of them is raised as ``StoreUnavailable``, never as the backend's own error.
    """

    async def append(self, user_id: int, track_id: int, ts_us: int) -> Listen:
        """Store one listen; return only once it is durable."""

    async def latest(self, user_id: int, limit: int) -> list[tuple[int, int]]:
        """The user's latest ``limit`` listens as (track_id, ts_us), most recent first."""

    async def heard(self, user_id: int) -> np.ndarray:
        """The track ids (int32) of the user's latest online listens (up to the store's bound), most recent first."""

    def ready(self) -> bool:
        """Whether reads and writes can be served now."""

    def close(self) -> None:
        """Finish the queued writes and release the store."""


@contextmanager
def _unavailable_on_error(what: str):
    """Raise a SQLite error as ``StoreUnavailable``, naming what failed."""
    try:
        yield
    except sqlite3.Error as error:
        raise StoreUnavailable(f"{what} failed ({type(error).__name__}: {error})") from error


def connect(path: Path, synchronous: str = "NORMAL", busy_timeout_s: float = 5.0) -> sqlite3.Connection:
    """A connection in WAL mode (autocommit: transactions are explicit); refuses a file system without WAL."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s)
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        connection.close()
        raise StoreUnavailable(f"{path}: SQLite could not switch to WAL mode (got {mode!r}); put the events "
                               "database on a local file system")
    connection.execute(f"PRAGMA synchronous={synchronous}")
    return connection


class SqliteListenStore:
    """Listens in one SQLite file (WAL), written by a group-committing thread."""

    def __init__(self, path: Path | str, synchronous: str = "NORMAL", max_listens: int = 5000,
                 busy_timeout_s: float = 5.0):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_listens = max_listens
        with _unavailable_on_error(f"opening {path}"):
            self._writer = connect(path, synchronous, busy_timeout_s)
            self._writer.executescript(_SCHEMA)
            self._writer.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._reader = connect(path, synchronous, busy_timeout_s)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._write_loop, name="listen-writer", daemon=True)
        self._thread.start()

    async def append(self, user_id: int, track_id: int, ts_us: int) -> Listen:
        if self._closed:
            raise StoreClosed("the event store is closed")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((user_id, track_id, ts_us, future, loop))
        try:
            return await asyncio.wait_for(asyncio.shield(future), WRITE_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise StoreUnavailable(f"the write was not committed within {WRITE_TIMEOUT_S:.0f} s") from None

    async def latest(self, user_id: int, limit: int) -> list[tuple[int, int]]:
        return self._read(_LATEST, (user_id, limit))

    async def heard(self, user_id: int) -> np.ndarray:
        rows = self._read(_HEARD, (user_id, self.max_listens))
        return np.fromiter((row[0] for row in rows), dtype=np.int32, count=len(rows))

    def _read(self, query: str, parameters: tuple) -> list[tuple]:
        if self._closed:
            raise StoreClosed("the event store is closed")
        with _unavailable_on_error("the read"):
            return self._reader.execute(query, parameters).fetchall()

    def ready(self) -> bool:
        if self._closed or not self._thread.is_alive():
            return False
        try:
            self._reader.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        """Stop taking writes, commit what is queued, and close both connections."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        self._writer.close()
        self._reader.close()

    def _write_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while batch[-1] is not _STOP:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = batch[-1] is _STOP
            if stop:
                batch.pop()
            if batch:
                try:
                    self._commit(batch)
                except Exception as error:  # never let the writer die: the next batch must still be served
                    for *_, future, loop in batch:
                        _call_in(loop, _fail, future, StoreUnavailable(f"the write failed: {error}"))
            if stop:
                return

    def _commit(self, batch: list[tuple]) -> None:
        """One transaction for the whole batch, then every waiting request is answered."""
        try:
            self._writer.execute("BEGIN IMMEDIATE")
            ids = [self._writer.execute(_INSERT, item[:3]).lastrowid for item in batch]
            self._writer.execute("COMMIT")
        except sqlite3.Error as error:
            if self._writer.in_transaction:
                try:
                    self._writer.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the transaction is gone either way; nothing was acknowledged
            for *_, future, loop in batch:
                _call_in(loop, _fail, future, StoreUnavailable(f"the write failed: {error}"))
            return
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for listen_id, (user_id, track_id, ts_us, future, loop) in zip(ids, batch):
            by_loop.setdefault(loop, []).append((future, Listen(listen_id, user_id, track_id, ts_us)))
        for loop, answers in by_loop.items():
            _call_in(loop, _resolve, answers)


def _call_in(loop: asyncio.AbstractEventLoop, callback, *args) -> None:
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # that loop has stopped: nobody is waiting for the answer
        pass


def _resolve(answers: list[tuple[asyncio.Future, Listen]]) -> None:
    for future, listen in answers:
        if not future.done():  # a client that hung up: its listen is committed all the same
            future.set_result(listen)


def _fail(future: asyncio.Future, error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
