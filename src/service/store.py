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

``open_store`` picks the backend from the settings' URL: ``sqlite:///path`` (here) or ``postgresql://...``
(``postgres_store.py``, imported only then). Both share the contract below: ``GroupCommit`` (one
transaction per loop iteration's appends), ``check_schema_version`` (created or checked at start) and
``StoreUnavailable`` as the only error a request sees.
"""
from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Awaitable, Callable, Protocol

import numpy as np

if TYPE_CHECKING:
    from .settings import Settings

SCHEMA_VERSION = 1  # PRAGMA user_version here, the recsys_schema table in PostgreSQL; bump on any change
_CREATE = (
    """CREATE TABLE IF NOT EXISTS listens (
    id INTEGER PRIMARY KEY,          -- insertion order: breaks ties between equal timestamps
    user_id INTEGER NOT NULL,
    track_id INTEGER NOT NULL,
    ts_us INTEGER NOT NULL            -- when the user listened, microseconds since the epoch (UTC)
)""",
    # "latest listens of a user" is one range scan of this index, which also holds track_id (covering)
    "CREATE INDEX IF NOT EXISTS listens_latest ON listens (user_id, ts_us DESC, id DESC, track_id)",
)
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


class StoreSchemaError(RuntimeError):
    """The database holds a schema this code does not know (older, newer or foreign): the service stops."""


def check_schema_version(found: int | None, has_listens: bool, where: str) -> bool:
    """Whether the schema must be created (an empty database); raise if it is not this code's own.

    ``found`` is the recorded version (None: none recorded); a ``listens`` table without one is foreign.
    """
    if found is None or found == 0:
        if has_listens:
            raise StoreSchemaError(f"{where}: a `listens` table without a schema version: not this service's "
                                   "schema; use another database")
        return True
    if found > SCHEMA_VERSION:
        raise StoreSchemaError(f"{where}: schema version {found} is newer than this code's {SCHEMA_VERSION}: "
                               "run the newer service, or another database")
    if found != SCHEMA_VERSION:
        raise StoreSchemaError(f"{where}: schema version {found}, this code needs {SCHEMA_VERSION}: migrate it first")
    return False


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

    async def ready(self) -> bool:
        """Whether reads and writes can be served now."""

    async def aclose(self) -> None:
        """Finish the queued writes and release the store."""


class GroupCommit:
    """Appends made in one event-loop iteration go to the database as one transaction (one batch).

    ``commit(batch)`` is the backend's: it returns the new row ids in batch order, or the exception to
    answer every append of the batch with. One batch is in flight at a time; appends made meanwhile wait
    for the next one, so batches grow with the load and commits per second stay bounded.
    """

    def __init__(self, commit: Callable[[list[tuple]], Awaitable[list[int] | Exception]]):
        self._commit = commit
        self._pending: list[tuple] = []  # (user_id, track_id, ts_us, future) not yet in a transaction
        self._flushing: asyncio.Task | None = None
        self.commits = 0  # transactions tried (a test checks that appends are grouped)

    async def append(self, user_id: int, track_id: int, ts_us: int) -> Listen:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((user_id, track_id, ts_us, future))
        if self._flushing is None:
            self._flushing = asyncio.ensure_future(self._flush())
        return await future

    def take(self) -> list[tuple]:
        """Everything queued and not yet in a transaction (for a synchronous close)."""
        batch, self._pending = self._pending, []
        return batch

    async def drain(self) -> None:
        """Wait until every queued append is answered."""
        while self._flushing is not None:
            await asyncio.shield(self._flushing)

    async def _flush(self) -> None:
        """Commit everything queued, batch after batch, until nothing is left.

        It starts one loop iteration after the first append, so every append of that iteration is in the
        batch; appends made while a batch commits go into the next one.
        """
        try:
            await asyncio.sleep(0)
            while self._pending:
                batch = self.take()
                self.commits += 1
                answer(batch, await self._commit(batch))
        finally:
            self._flushing = None


def track_ids(rows: list) -> np.ndarray:
    """The first column of ``heard``'s rows (track ids, most recent first) as int32, for either backend."""
    return np.fromiter((row[0] for row in rows), dtype=np.int32, count=len(rows))


def answer(batch: list[tuple], outcome: list[int] | Exception) -> None:
    """Resolve each append of a batch with its ``Listen``, or every one with ``StoreUnavailable``."""
    for index, (user_id, track_id, ts_us, future) in enumerate(batch):
        if future.done():  # a client that hung up: its listen is committed all the same
            continue
        if isinstance(outcome, Exception):
            future.set_exception(StoreUnavailable(str(outcome)))
        else:
            future.set_result(Listen(outcome[index], user_id, track_id, ts_us))


async def open_store(settings: "Settings") -> ListenStore:
    """The store the settings name: PostgreSQL for a ``postgresql://`` URL (driver loaded only then), else SQLite."""
    if settings.events_url:
        from .postgres_store import PostgresListenStore
        return await PostgresListenStore.open(settings.events_url, max_listens=settings.max_online_listens,
                                              pool_size=settings.events_pool_size)
    return SqliteListenStore(settings.events_db, settings.synchronous, settings.max_online_listens)


async def prepare_store(settings: "Settings") -> None:
    """Create or check the schema once, before any worker starts (raises ``StoreSchemaError``/``StoreUnavailable``)."""
    store = await open_store(settings)
    await store.aclose()


@contextmanager
def _unavailable_on_error(what: str):
    """Raise a SQLite error as ``StoreUnavailable``, naming what failed."""
    try:
        yield
    except sqlite3.Error as error:
        raise StoreUnavailable(f"{what} failed ({type(error).__name__}: {error})") from error


def connect(path: Path, synchronous: str = "NORMAL", busy_timeout_s: float = 5.0) -> sqlite3.Connection:
    """A connection in WAL mode (autocommit: transactions are explicit); refuses a file system without WAL.

    Switching a fresh file to WAL takes the write lock: it waits for it up to ``busy_timeout_s`` like any
    write (a second worker starting at the same moment failed here with "database is locked").
    """
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s)
    mode = _switch_to_wal(connection, busy_timeout_s)
    if str(mode).lower() != "wal":
        connection.close()
        raise StoreUnavailable(f"{path}: SQLite could not switch to WAL mode (got {mode!r}); put the events "
                               "database on a local file system")
    connection.execute(f"PRAGMA synchronous={synchronous}")
    return connection


def _switch_to_wal(connection: sqlite3.Connection, busy_timeout_s: float) -> str:
    """``PRAGMA journal_mode=WAL``, retried while another connection holds the lock, up to ``busy_timeout_s``.

    SQLite answers this pragma "database is locked" at once, without its busy handler, while another
    process is switching the same fresh file: the timeout of ``sqlite3.connect`` does not cover it.
    """
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            return connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or time.monotonic() >= deadline:
                connection.close()
                raise
            time.sleep(0.005)  # start-up only: blocking here holds no request


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
            self._writer = connect(path, synchronous, busy_timeout_s)
            self._create_schema()
            # from here the writer never waits inside SQLite (that would block the event loop): a busy lock
            # is retried by ``_commit`` with asyncio sleeps, up to busy_timeout_s
            self._writer.execute("PRAGMA busy_timeout=0")
            self._reader = connect(path, synchronous, busy_timeout_s)
            self._writer.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it instead
            self._checkpointer = Checkpointer(connect(path, synchronous, busy_timeout_s))
        self._group = GroupCommit(self._commit)
        self._closed = False

    def _create_schema(self) -> None:
        """Check the schema version; on a fresh file create the schema once, under the write lock.

        Every worker runs this at start: a file at this version is recognised without a lock; anything
        else takes the lock (waiting for it) and is checked there, so concurrent starts create it once
        and none sees another's half-made schema.
        """
        if self._writer.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        self._writer.execute("BEGIN IMMEDIATE")
        try:
            version = self._writer.execute("PRAGMA user_version").fetchone()[0]
            has_listens = self._writer.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'listens'").fetchone() is not None
            if check_schema_version(version, has_listens, str(self.path)):
                for statement in _CREATE:
                    self._writer.execute(statement)
                self._writer.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._writer.execute("COMMIT")
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise

    @property
    def commits(self) -> int:
        return self._group.commits

    async def append(self, user_id: int, track_id: int, ts_us: int) -> Listen:
        if self._closed:
            raise StoreClosed("the event store is closed")
        return await self._group.append(user_id, track_id, ts_us)

    async def latest(self, user_id: int, limit: int) -> list[tuple[int, int]]:
        return self._read(_LATEST, (user_id, limit))

    async def heard(self, user_id: int) -> np.ndarray:
        return track_ids(self._read(_HEARD, (user_id, self.max_listens)))

    def _read(self, query: str, parameters: tuple) -> list[tuple]:
        if self._closed:
            raise StoreClosed("the event store is closed")
        with _unavailable_on_error("the read"):
            return self._reader.execute(query, parameters).fetchall()

    async def ready(self) -> bool:
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
        batch = self._group.take()
        if batch:
            self._writer.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            answer(batch, self._try_commit(batch))
        self._writer.close()
        self._reader.close()

    async def aclose(self) -> None:
        self.close()

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
