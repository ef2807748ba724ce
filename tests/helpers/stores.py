"""Both event stores behind one test interface: open one, and reach behind its back as another client would.

The behaviour tests are written once against ``StoreBackend``; what differs per backend (how to open
it, how another connection drops the table, holds the write lock or records a schema version) lives here.
"""
from __future__ import annotations

import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Callable

from src.service.store import ListenStore, SqliteListenStore

BACKENDS = ("sqlite", "postgresql")


class StoreBackend:
    """One backend's store for a test: SQLite in ``tmp_path``, or a fresh database on ``server``."""

    def __init__(self, name: str, tmp_path: Path, run: Callable, server=None):
        self.name = name
        self.run = run
        self.server = server
        self.path = tmp_path / "events.sqlite"
        self.url = server.new_database() if server else None
        self._stores: list[ListenStore] = []

    def open(self, **options) -> ListenStore:
        """A store on this test's database; ``options`` are the store's (``max_listens``, timeouts)."""
        if self.url is None:
            store = SqliteListenStore(self.path, **options)
        else:
            from src.service.postgres_store import PostgresListenStore
            store = self.run(PostgresListenStore.open(self.url, **options))
        self._stores.append(store)
        return store

    def unreachable(self) -> Callable[[], ListenStore]:
        """Opening a store where no database can be: a folder in the file's place, or a port nobody serves."""
        if self.url is None:
            self.path.mkdir()
            return lambda: SqliteListenStore(self.path)
        from src.service.postgres_store import PostgresListenStore
        from tests.helpers.server_process import free_port
        return lambda: self.run(PostgresListenStore.open(f"postgresql://postgres@127.0.0.1:{free_port()}/x"))

    def execute(self, sql: str) -> None:
        """Statements run by another client of the same database."""
        if self.url is None:
            with closing(sqlite3.connect(self.path, isolation_level=None)) as other:
                other.executescript(sql)
        else:
            self.server.execute(sql, self.url.rsplit("/", 1)[1])

    def set_schema_version(self, version: int) -> None:
        self.execute(f"PRAGMA user_version={version}" if self.url is None else f"UPDATE recsys_schema SET version = {version}")

    @contextmanager
    def writes_blocked(self):
        """Another client holds the table's write lock for the block."""
        if self.url is None:
            with closing(sqlite3.connect(self.path, isolation_level=None)) as blocker:
                blocker.execute("BEGIN IMMEDIATE")
                yield
                blocker.execute("ROLLBACK")
            return
        import asyncpg

        async def lock():
            connection = await asyncpg.connect(self.url)
            transaction = connection.transaction()
            await transaction.start()
            await connection.execute("LOCK TABLE listens IN EXCLUSIVE MODE")
            return connection, transaction

        connection, transaction = self.run(lock())
        try:
            yield
        finally:
            self.run(transaction.rollback())
            self.run(connection.close())

    def close_all(self) -> None:
        for store in self._stores:
            self.run(store.aclose())
