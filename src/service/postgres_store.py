"""The PostgreSQL event store: one database shared by every replica, through asyncpg on the event loop.

Why asyncpg: its protocol runs on the event loop (no thread handoff per query, which cost more CPU than
a SQLite commit did), it prepares and caches each statement per connection, and it has its own pool.
Each worker process holds one pool of up to ``pool_size`` connections; a request borrows one for one
statement, so a read sees every commit made before it by any replica (READ COMMITTED).

Writes are group-committed (``store.GroupCommit``): the appends of one loop iteration are one
``INSERT ... SELECT FROM unnest(...)``, one round trip and one WAL flush, and each is acknowledged only
after that commit returns (``synchronous_commit`` stays on: a listen survives the database's crash too).

Every backend failure (refused connection, server shutting down, broken connection, timeout) is raised as
``StoreUnavailable``: the app answers 503 with ``Retry-After`` and recommendations fall back to the
bundle. After a failure the store fails fast for ``RETRY_S`` (no connection attempt per request while
the database is down), then tries again; the pool replaces broken connections by itself, so the service
recovers without a restart once the database is back.
"""
from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

import asyncpg
import numpy as np

from .settings import redacted
from .store import (SCHEMA_VERSION, GroupCommit, Listen, StoreClosed, StoreUnavailable, check_schema_version,
                    track_ids)

TIMEOUT_S = 2.0  # connecting, borrowing a connection, one statement: a hung database answers 503 after this
RETRY_S = 0.25  # after a failure, fail fast this long before trying the database again
_SCHEMA_LOCK = 7_262_001  # pg_advisory_xact_lock key: replicas starting together create the schema once
_CREATE = (
    """CREATE TABLE listens (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- insertion order: breaks timestamp ties
        user_id bigint NOT NULL,
        track_id integer NOT NULL,
        ts_us bigint NOT NULL                                 -- microseconds since the epoch (UTC)
    )""",
    # "latest listens of a user" is one range scan of this index, which also holds track_id (index-only)
    "CREATE INDEX listens_latest ON listens (user_id, ts_us DESC, id DESC) INCLUDE (track_id)",
    "CREATE TABLE recsys_schema (version integer NOT NULL)",
)
_LATEST = "SELECT track_id, ts_us FROM listens WHERE user_id = $1 ORDER BY ts_us DESC, id DESC LIMIT $2"
_HEARD = "SELECT track_id FROM listens WHERE user_id = $1 ORDER BY ts_us DESC, id DESC LIMIT $2"
_INSERT = ("INSERT INTO listens (user_id, track_id, ts_us) "
           "SELECT * FROM unnest($1::bigint[], $2::integer[], $3::bigint[]) RETURNING id")
_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, asyncio.TimeoutError)
# the database is down or going down (not a slow or failing statement): fail fast for RETRY_S after these;
# a timeout (an OSError too) is not among them: it may be one statement waiting for a lock
_DOWN = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
         asyncpg.AdminShutdownError)


class PostgresListenStore:
    """Listens in a PostgreSQL table shared by every replica; one connection pool per worker process."""

    def __init__(self, pool: asyncpg.Pool, max_listens: int, timeout_s: float = TIMEOUT_S):
        self._pool = pool
        self.timeout_s = timeout_s
        self.max_listens = max_listens
        self._group = GroupCommit(self._commit)
        self._closed = False
        self._down_until = 0.0  # monotonic time before which requests fail without trying the database

    @classmethod
    async def open(cls, url: str, max_listens: int = 5000, pool_size: int = 4,
                   timeout_s: float = TIMEOUT_S) -> "PostgresListenStore":
        """Connect, then create the schema or check its version (``StoreSchemaError`` stops the service)."""
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=pool_size, timeout=timeout_s,
                                             command_timeout=timeout_s, reset=_keep_session)
        except _ERRORS as error:
            raise StoreUnavailable(f"connecting to {redacted(url)} failed ({type(error).__name__}: {error})") from error
        try:
            async with pool.acquire() as connection:
                await _create_schema(connection, redacted(url))
        except _ERRORS as error:
            await pool.close()
            raise StoreUnavailable(f"checking the schema failed ({type(error).__name__}: {error})") from error
        except BaseException:
            await pool.close()
            raise
        return cls(pool, max_listens, timeout_s)

    @property
    def commits(self) -> int:
        return self._group.commits

    async def append(self, user_id: int, track_id: int, ts_us: int) -> Listen:
        self._check_open()
        return await self._group.append(user_id, track_id, ts_us)

    async def latest(self, user_id: int, limit: int) -> list[tuple[int, int]]:
        self._check_open()
        async with self._connection("the read") as connection:
            return [tuple(row) for row in await connection.fetch(_LATEST, user_id, limit)]

    async def heard(self, user_id: int) -> np.ndarray:
        self._check_open()
        async with self._connection("the read") as connection:
            rows = await connection.fetch(_HEARD, user_id, self.max_listens)
        return track_ids(rows)

    async def ready(self) -> bool:
        if self._closed:
            return False
        try:
            async with self._connection("the check") as connection:
                await connection.fetchval("SELECT 1")
        except StoreUnavailable:
            return False
        return True

    async def aclose(self) -> None:
        """Stop taking writes, let the queued ones commit, close the pool."""
        if self._closed:
            return
        self._closed = True
        await self._group.drain()
        try:
            await asyncio.wait_for(self._pool.close(), self.timeout_s)
        except _ERRORS:  # asyncio.TimeoutError among them
            self._pool.terminate()

    async def _commit(self, batch: list[tuple]) -> list[int] | Exception:
        """One statement (its own transaction) for the whole batch; the ids in batch order, or the error."""
        columns = list(zip(*(item[:3] for item in batch)))
        try:
            async with self._connection("the write") as connection:
                rows = await connection.fetch(_INSERT, *columns)
        except StoreUnavailable as error:
            return error
        return [row[0] for row in rows]

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the event store is closed")

    @asynccontextmanager
    async def _connection(self, what: str):
        """A pooled connection for one statement; any backend error leaves as ``StoreUnavailable``.

        It does not look at ``_closed``: the appends queued before ``aclose`` still commit through it."""
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(f"{what} was not tried: the database failed less than {RETRY_S} s ago")
        try:
            async with self._pool.acquire(timeout=self.timeout_s) as connection:
                try:
                    yield connection
                except _ERRORS:
                    # it may be left mid-operation (the pool skips its reset query, ``_keep_session``): close
                    # it, so that no later request gets it; the pool opens a fresh one when needed
                    connection.terminate()
                    raise
        except _ERRORS as error:
            if isinstance(error, _DOWN) and not isinstance(error, TimeoutError):
                self._down_until = time.monotonic() + RETRY_S
            raise StoreUnavailable(f"{what} failed ({type(error).__name__}: {error})") from error


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool: the store never changes a session (no SET,
    LISTEN or session advisory lock), and asyncpg's default reset query cost one more round trip per request.
    A connection whose statement failed is closed instead (``_connection``): it may be mid-operation."""


async def _create_schema(connection: asyncpg.Connection, where: str) -> None:
    """Check the recorded version; on an empty database create the schema (once: under an advisory lock)."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        has_version = await connection.fetchval("SELECT to_regclass('recsys_schema') IS NOT NULL")
        version = await connection.fetchval("SELECT max(version) FROM recsys_schema") if has_version else None
        has_listens = await connection.fetchval("SELECT to_regclass('listens') IS NOT NULL")
        if check_schema_version(version, has_listens, where):
            for statement in _CREATE:
                await connection.execute(statement)
            await connection.execute("INSERT INTO recsys_schema (version) VALUES ($1)", SCHEMA_VERSION)
