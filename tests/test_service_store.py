"""The event stores (SQLite and PostgreSQL, the same behaviour tests for both) and the service settings, without HTTP.

The PostgreSQL runs are against a real server (``tests/helpers/postgres.py``), a fresh database per test.
"""
from __future__ import annotations

import ast
import asyncio
import sqlite3
from pathlib import Path

import pytest

from src.service.settings import Settings, SettingsError, load_settings, settings_from
from src.service.store import SCHEMA_VERSION, ListenStore, StoreClosed, StoreSchemaError, StoreUnavailable
from tests.helpers.service import SERVICE_PARAMS, write_service_params


def test_concurrent_appends_are_group_committed_and_all_durable(backend, run):
    store = backend.open()

    async def write_many():
        return await asyncio.gather(*(store.append(user % 7, 100 + user, 1_000_000 * user) for user in range(500)))

    listens = run(write_many())
    assert store.commits <= 5  # 500 appends of one loop iteration: a handful of transactions, not 500
    run(store.aclose())  # everything queued is committed by now
    assert sorted(listen.id for listen in listens) == list(range(1, 501))
    assert all(listen.track_id == 100 + listen.ts_us // 1_000_000 for listen in listens)
    reopened = backend.open()
    stored = sum(len(run(reopened.latest(user, 1000))) for user in range(7))
    assert stored == 500


def test_closing_commits_the_appends_already_queued(backend, run):
    store = backend.open()

    async def close_while_writing():
        writes = [asyncio.ensure_future(store.append(3, 100 + n, n)) for n in range(20)]
        await asyncio.sleep(0)  # queued, not yet committed
        await store.aclose()
        return await asyncio.gather(*writes)

    assert [listen.track_id for listen in run(close_while_writing())] == [100 + n for n in range(20)]
    assert len(run(backend.open().latest(3, 100))) == 20


def test_latest_and_heard_are_newest_first_with_ties_by_insertion(backend, run):
    store: ListenStore = backend.open()

    async def scenario():
        for track, ts in ((1, 50), (2, 70), (3, 50), (4, 60), (5, 70)):
            await store.append(9, track, ts)
        await store.append(10, 6, 99)
        return await store.latest(9, 3), (await store.heard(9)).tolist(), await store.latest(11, 5)

    latest, heard, nobody = run(scenario())
    assert latest == [(5, 70), (2, 70), (4, 60)]
    assert heard == [5, 2, 4, 3, 1]
    assert nobody == []


def test_a_write_is_read_at_once_through_another_store_on_the_same_database(backend, run):
    """Two stores on one database stand for two workers or two replicas: each read sees every commit before it."""
    first, second = backend.open(), backend.open()
    for n in range(5):
        writer, reader = (first, second) if n % 2 else (second, first)
        run(writer.append(4, 10 + n, 1_000 + n))
        assert run(reader.latest(4, 1)) == [(10 + n, 1_000 + n)]
        assert run(reader.heard(4)).tolist()[0] == 10 + n


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_reads_latest_listens_from_one_covering_index_without_sorting(backend):
    store = backend.open()
    for query in ("SELECT track_id, ts_us FROM listens WHERE user_id = 1 ORDER BY ts_us DESC, id DESC LIMIT 10",
                  "SELECT track_id FROM listens WHERE user_id = 1 ORDER BY ts_us DESC, id DESC"):
        plan = " ".join(row[-1] for row in store._reader.execute(f"EXPLAIN QUERY PLAN {query}"))
        assert "USING COVERING INDEX listens_latest" in plan and "TEMP B-TREE" not in plan, plan
    with sqlite3.connect(backend.path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgres_reads_latest_listens_with_one_index_only_scan(backend, run):
    from src.service.postgres_store import _HEARD, _LATEST
    store = backend.open()
    run(store.append(1, 2, 3))

    async def plan(query: str) -> str:
        """The plan PostgreSQL takes on a big table (a tiny one is read whole: the planner is told not to)."""
        async with store._pool.acquire() as connection:
            await connection.execute("VACUUM listens")  # sets the visibility map, as autovacuum would
            await connection.execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
            rows = await connection.fetch(f"EXPLAIN {query}", 1, 10)
            await connection.execute("RESET enable_seqscan; RESET enable_bitmapscan")
        return " ".join(row[0] for row in rows)

    for query in (_LATEST, _HEARD):
        found = run(plan(query))
        assert "Index Only Scan using listens_latest" in found and "Sort" not in found, found


def test_a_closed_store_refuses_writes_and_is_not_ready(backend, run):
    store = backend.open()
    assert run(store.ready())
    run(store.aclose())
    assert not run(store.ready())
    with pytest.raises(StoreClosed):
        run(store.append(1, 1, 1))
    with pytest.raises(StoreClosed):
        run(store.latest(1, 1))


def test_a_failing_read_raises_the_stores_own_error(backend, run):
    store = backend.open()
    backend.execute("DROP TABLE listens")
    with pytest.raises(StoreUnavailable, match="listens"):
        run(store.latest(1, 5))
    with pytest.raises(StoreUnavailable, match="listens"):
        run(store.heard(1))


def test_an_unopenable_database_raises_the_stores_own_error(backend):
    with pytest.raises(StoreUnavailable, match="opening|connecting"):
        backend.unreachable()()


def test_the_schema_is_created_once_with_its_version_and_checked_at_every_start(backend, run):
    run(backend.open().append(1, 2, 3))
    assert run(backend.open().latest(1, 5)) == [(2, 3)]  # a second start checks the version, keeps the data
    backend.set_schema_version(SCHEMA_VERSION + 1)
    with pytest.raises(StoreSchemaError, match="newer"):
        backend.open()
    backend.set_schema_version(SCHEMA_VERSION - 1 if SCHEMA_VERSION > 1 else 0)
    with pytest.raises(StoreSchemaError, match="schema"):
        backend.open()


def test_a_foreign_listens_table_stops_the_store(backend):
    backend.execute("CREATE TABLE listens (who text)")
    with pytest.raises(StoreSchemaError, match="without a schema version"):
        backend.open()


def test_without_postgresql_the_tests_fail_under_ci_and_skip_elsewhere(monkeypatch):
    from tests.helpers import postgres
    monkeypatch.setattr(postgres, "postgres_bin", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y postgresql"):
        postgres.require_postgres()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        postgres.require_postgres()


def test_only_the_store_modules_know_their_backend():
    """The HTTP layer handles ``StoreUnavailable`` only; each driver is imported by its own store module."""
    drivers = {"sqlite3": "store.py", "asyncpg": "postgres_store.py"}
    for module in Path("src/service").glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        for driver, owner in drivers.items():
            assert module.name == owner or driver not in imported, module


def test_the_sqlite_path_never_loads_the_postgresql_driver():
    import subprocess
    import sys
    code = "import sys, src.service.__main__, src.service.app, src.service.worker; print('asyncpg' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_settings_from_params_with_environment_overrides(tmp_path):
    settings = load_settings({"RECSYS_PARAMS": str(write_service_params(tmp_path))})
    assert settings.bundle_dir == tmp_path / "bundle" and settings.events_db == tmp_path / "online/events.sqlite"
    assert (settings.host, settings.port, settings.synchronous, settings.write_token) == ("127.0.0.1", 8000, "NORMAL", None)
    overridden = settings_from(SERVICE_PARAMS, tmp_path, {"RECSYS_PORT": "9001", "RECSYS_BUNDLE_DIR": "b",
                                                          "RECSYS_EVENTS_DB": "e.db", "RECSYS_HOST": "::1",
                                                          "RECSYS_EVENTS_SYNCHRONOUS": "full"})
    assert (overridden.port, str(overridden.bundle_dir), str(overridden.events_db)) == (9001, "b", "e.db")
    assert overridden.synchronous == "FULL" and overridden.loopback
    assert settings.events_url is None and settings.store_url == f"sqlite:///{tmp_path}/online/events.sqlite"


def test_the_event_store_url_names_sqlite_or_postgresql(tmp_path):
    url = "postgresql://recsys@127.0.0.1:5432/recsys"
    from_env = settings_from(SERVICE_PARAMS, tmp_path, {"RECSYS_EVENTS_URL": url, "RECSYS_EVENTS_POOL_SIZE": "8"})
    assert (from_env.events_url, from_env.store_url, from_env.events_pool_size) == (url, url, 8)
    relative = settings_from({**SERVICE_PARAMS, "events_url": "sqlite:///online/other.sqlite"}, tmp_path, {})
    assert relative.events_url is None and relative.events_db == tmp_path / "online/other.sqlite"
    absolute = settings_from(SERVICE_PARAMS, tmp_path, {"RECSYS_EVENTS_URL": "sqlite:////var/events.sqlite"})
    assert absolute.events_db == Path("/var/events.sqlite")
    assert settings_from({**SERVICE_PARAMS, "events_url": url}, tmp_path, {}).events_url == url
    with pytest.raises(SettingsError, match="events_url") as wrong_scheme:
        settings_from(SERVICE_PARAMS, tmp_path, {"RECSYS_EVENTS_URL": "mysql://me:secret@db/x"})
    assert "'mysql://me:***@db/x'" in str(wrong_scheme.value)  # what is wrong is shown, the password is not
    with pytest.raises(SettingsError, match="events_pool_size"):
        settings_from(SERVICE_PARAMS, tmp_path, {"RECSYS_EVENTS_POOL_SIZE": "0"})


def test_a_password_in_the_url_is_never_shown():
    from src.service.settings import redacted
    assert redacted("postgresql://recsys:secret@db:5432/recsys") == "postgresql://recsys:***@db:5432/recsys"
    assert redacted("postgresql://recsys@db/recsys") == "postgresql://recsys@db/recsys"
    assert redacted("recsys:secret@db/recsys") == "recsys:***@db/recsys"


@pytest.mark.parametrize("env, message", [
    ({"RECSYS_PORT": "http"}, "port"),
    ({"RECSYS_PORT": "70000"}, "port"),
    ({"RECSYS_EVENTS_SYNCHRONOUS": "OFF"}, "synchronous"),
    ({"RECSYS_WRITE_TOKEN": " "}, "RECSYS_WRITE_TOKEN"),
    ({"RECSYS_WORKERS": "0"}, "workers"),
    ({"RECSYS_WORKERS": "two"}, "workers"),
])
def test_bad_settings_are_refused_with_the_setting_named(tmp_path, env, message):
    with pytest.raises(SettingsError, match=message):
        settings_from(SERVICE_PARAMS, tmp_path, env)


def test_bad_params_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="cannot be read"):
        load_settings({"RECSYS_PARAMS": str(tmp_path / "missing.yaml")})
    with pytest.raises(SettingsError, match="max_online_listens"):
        settings_from({**SERVICE_PARAMS, "max_online_listens": 2}, tmp_path, {})
    with pytest.raises(SettingsError, match="bundle_dir"):
        settings_from({key: value for key, value in SERVICE_PARAMS.items() if key != "bundle_dir"}, tmp_path, {})


def test_a_public_address_needs_a_write_token(tmp_path):
    exposed = Settings(tmp_path, tmp_path / "e.db", host="0.0.0.0")
    with pytest.raises(SettingsError, match="RECSYS_WRITE_TOKEN"):
        exposed.check_bind()
    Settings(tmp_path, tmp_path / "e.db", host="0.0.0.0", write_token="t").check_bind()
    Settings(tmp_path, tmp_path / "e.db", host="localhost").check_bind()


def test_a_request_reads_a_bounded_number_of_latest_listens(backend, run):
    store = backend.open(max_listens=4)

    async def scenario():
        for ts in range(1, 11):
            await store.append(5, 100 + ts, ts)
        return (await store.heard(5)).tolist()

    assert run(scenario()) == [110, 109, 108, 107]  # the 4 latest, newest first


def test_a_failed_batch_is_reported_and_the_writer_keeps_going(backend, run):
    """A write lock held elsewhere fails the batch with StoreUnavailable (after the timeout); the next write commits."""
    store = backend.open(**({"busy_timeout_s": 0.05} if backend.name == "sqlite" else {"timeout_s": 0.3}))
    with backend.writes_blocked():
        with pytest.raises(StoreUnavailable, match="locked|Timeout"):
            run(store.append(1, 2, 3))
    assert run(store.append(1, 2, 3)).track_id == 2


def _open_at_once(path: str, barrier) -> str:
    """One process of ``test_processes_opening_a_fresh_sqlite_file_at_once_all_succeed``."""
    from src.service.store import SqliteListenStore
    barrier.wait()
    try:
        SqliteListenStore(path).close()
    except StoreUnavailable as error:
        return str(error)
    return "ok"


def test_processes_opening_a_fresh_sqlite_file_at_once_all_succeed(tmp_path):
    """Workers starting together on a fresh file: switching to WAL and creating the schema wait for the lock
    like any write (one of two workers failed its start with "database is locked")."""
    import multiprocessing
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        for attempt in range(10):  # before the fix, 20 rounds out of 20 failed; after it, 0 of 20
            barrier = context.Manager().Barrier(4)
            path = str(tmp_path / f"events{attempt}.sqlite")
            assert pool.starmap(_open_at_once, [(path, barrier)] * 4) == ["ok"] * 4
        with sqlite3.connect(path) as check:
            assert check.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
            assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
