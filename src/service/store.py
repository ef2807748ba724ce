"""The online event store: users' listens, written durably and read latest-first.

``ListenStore`` is what the app needs; ``SqliteListenStore`` is the embedded default. Appends made in
the same event-loop iteration are committed in one transaction (group commit) on the event loop
itself, then each request is answered: an acknowledged listen is committed. A WAL commit without
fsync (``NORMAL``) takes tens of microseconds, cheaper than handing each write to a thread and back
(which cost more CPU than the commit). Several worker processes share the file: SQLite lets one writer
at a time, and a worker that finds the lock taken retries with asyncio sleeps (never blocking its event
loop) up to ``busy_timeout_s``, then answers 503. Reads run inline on a second connection (WAL lets
them proceed beside any writer, and each read sees every commit made before it, by any process); they
are one seek in a covering index, tens of microseconds.

Durability: WAL with ``synchronous=NORMAL`` keeps every committed listen across a killed process
(``kill -9``); ``FULL`` also syncs each commit to disk, for power loss, at a few ms per commit.

A request reads at most ``max_listens`` of a user's latest listens: a user (or a bot) with 300k listens
costs the same bounded read as anybody else and the event loop never stalls; listens older than that
no longer count as heard (train history always does).
"""
from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
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
_INSERT = "INSERT INTO listens (user_id, track_id, ts_us) VALUES (?, ?, ?)"


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
    """Listens in one SQLite file (WAL), group-committed on the event loop; safe for several processes."""

    def __init__(self, path: Path | str, synchronous: str = "NORMAL", max_listens: int = 5000,
                 busy_timeout_s: float = 5.0):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_listens = max_listens
        self.busy_timeout_s = busy_timeout_s
        with _unavailable_on_error(f"opening {path}"):
            # the writer never waits inside SQLite (that would block the event loop): a busy lock is retried
            # by ``_commit`` with asyncio sleeps, up to busy_timeout_s
            self._writer = connect(path, synchronous, busy_timeout_s=0)
            self._create_schema(busy_timeout_s)
            self._reader = connect(path, synchronous, busy_timeout_s)
            self._writer.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it instead
            self._checkpointer = Checkpointer(connect(path, synchronous, busy_timeout_s))
        self._pending: list[tuple] = []  # (user_id, track_id, ts_us, future) not yet in a transaction
        self._flushing: asyncio.Task | None = None
        self._closed = False

    def _create_schema(self, busy_timeout_s: float) -> None:
        """Every worker runs this at start; the busy timeout lets them queue instead of failing."""
        self._writer.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        self._writer.executescript(_SCHEMA)
        self._writer.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._writer.execute("PRAGMA busy_timeout=0")

    async def append(self, user_id: int, track_id: int, ts_us: int) -> Listen:
        if self._closed:
            raise StoreClosed("the event store is closed")
        future = asyncio.get_running_loop().create_future()
        self._pending.append((user_id, track_id, ts_us, future))
        if self._flushing is None:
            self._flushing = asyncio.ensure_future(self._flush())
        return await future

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
        if self._closed:
            return False
        try:
            self._reader.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        """Stop taking writes, commit what is queued (waiting for another process's lock if need be), close."""
        if self._closed:
            return
        self._closed = True
        self._checkpointer.stop()
        batch, self._pending = self._pending, []
        if batch:
            self._writer.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            self._answer(batch, self._try_commit(batch))
        self._writer.close()
        self._reader.close()

    async def _flush(self) -> None:
        """Commit everything queued, batch after batch, until nothing is left.

        It starts one loop iteration after the first append, so every append of that iteration is in the
        batch; appends made while a batch waits for the lock go into the next one.
        """
        try:
            await asyncio.sleep(0)
            while self._pending:
                batch, self._pending = self._pending, []
                self._answer(batch, await self._commit(batch))
        finally:
            self._flushing = None

    async def _commit(self, batch: list[tuple]) -> list[int] | Exception:
        """``_try_commit``, retried while another process holds the write lock (up to busy_timeout_s)."""
        deadline = time.monotonic() + self.busy_timeout_s
        pause = 0.0002
        while True:
            outcome = self._try_commit(batch)
            if not (isinstance(outcome, _Busy) and time.monotonic() + pause < deadline):
                return outcome
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.001)  # the lock is held for tens of µs: retry soon, not after 5 ms

    def _try_commit(self, batch: list[tuple]) -> list[int] | Exception:
        """One transaction for the whole batch; its row ids, or the error (``_Busy`` when the lock is taken).

        No await happens inside the transaction, so it is never open while other requests run.
        """
        try:
            self._writer.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            return _Busy(f"the write failed: {error}") if _is_busy(error) else StoreUnavailable(
                f"the write failed: {error}")
        try:
            ids = [self._writer.execute(_INSERT, item[:3]).lastrowid for item in batch]
            self._writer.execute("COMMIT")
            return ids
        except sqlite3.Error as error:
            if self._writer.in_transaction:
                try:
                    self._writer.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the transaction is gone either way; nothing was acknowledged
            return StoreUnavailable(f"the write failed: {error}")

    @staticmethod
    def _answer(batch: list[tuple], outcome: list[int] | Exception) -> None:
        for index, (user_id, track_id, ts_us, future) in enumerate(batch):
            if future.done():  # a client that hung up: its listen is committed all the same
                continue
            if isinstance(outcome, Exception):
                future.set_exception(StoreUnavailable(str(outcome)))
            else:
                future.set_result(Listen(outcome[index], user_id, track_id, ts_us))


class Checkpointer:
    """Copies the WAL back into the database every ``interval_s``, on its own thread and connection.

    SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages and syncs the file:
    4-6 ms on this machine's disk, during which that worker's event loop answered nothing. Here the
    sync waits off the event loop (sqlite3 releases the GIL). ``PASSIVE`` never waits for readers or
    writers; with several workers each runs one, and the ones that find the WAL busy skip a turn.
    """

    def __init__(self, connection: sqlite3.Connection, interval_s: float = 0.5):
        self.connection = connection
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                pass  # the next turn tries again; a checkpoint is housekeeping, never needed for correctness

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.connection.close()


class _Busy(StoreUnavailable):
    """Another connection holds the write lock (to be retried)."""


def _is_busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or \
        "locked" in str(error) or "busy" in str(error)
