"""A real PostgreSQL server for tests, from the installed binaries: ``initdb`` + ``pg_ctl`` in a temp folder.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` system user (the Debian
package creates it) in a folder that user owns. It listens on 127.0.0.1 at a free port, trusts local
connections, and is stopped (and its folder removed) by ``close``. Tests stop and start it to simulate
an outage. Missing binaries: ``pytest.fail`` under CI (``CI=true``), ``pytest.skip`` elsewhere.
"""
from __future__ import annotations

import asyncio
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.helpers.server_process import free_port

SUPERUSER = "postgres"


def postgres_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, or Debian's /usr/lib/postgresql/<newest>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # Debian links initdb and pg_ctl alone into PATH, at most
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(candidates[-1]).parent if candidates else None


def require_postgres() -> Path:
    """The binaries' folder, or the test fails (CI: PostgreSQL is part of the test setup) or skips (elsewhere)."""
    folder = postgres_bin()
    if folder is None:
        message = "PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install -y postgresql"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


class PostgresServer:
    """One throwaway cluster: ``start``/``stop`` (an outage), ``new_database``, ``close`` (gone for good)."""

    def __init__(self, binaries: Path):
        self.binaries = binaries
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="recsys-pg-"))
        self.data = self.root / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(SUPERUSER)
            except KeyError:
                pytest.fail("running as root, PostgreSQL needs an unprivileged user: no `postgres` user here")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as_user = ["runuser", "-u", SUPERUSER, "--"]
        self._names = itertools.count(1)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> "PostgresServer":
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root}"
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options)
        return self

    def stop(self) -> None:
        """A fast shutdown (open connections are cut, like a database going down)."""
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def new_database(self) -> str:
        """A fresh empty database's URL."""
        name = f"test_{next(self._names)}"
        self.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run statements as the superuser, on a connection of their own."""
        import asyncpg

        async def run() -> None:
            connection = await asyncpg.connect(self.url(database))
            try:
                await connection.execute(sql)
            finally:
                await connection.close()

        asyncio.run(run())

    def close(self) -> None:
        if self.running():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _run(self, program: str, *args: str) -> None:
        command = [*self._as_user, str(self.binaries / program), *args]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{program} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{self.log()}")
