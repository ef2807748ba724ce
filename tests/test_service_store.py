"""The SQLite event store and the service settings, without HTTP."""
from __future__ import annotations

import ast
import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from src.service.settings import Settings, SettingsError, load_settings, settings_from
from src.service.store import ListenStore, StoreClosed, StoreUnavailable
from tests.helpers.service import SERVICE_PARAMS, write_service_params


def test_concurrent_appends_are_group_committed_and_all_durable(tmp_path, open_store):
    store = open_store()

    async def write_many():
        return await asyncio.gather(*(store.append(user % 7, 100 + user, 1_000_000 * user) for user in range(500)))

    listens = asyncio.run(write_many())
    store.close()  # everything queued is committed by now
    assert sorted(listen.id for listen in listens) == list(range(1, 501))
    assert all(listen.track_id == 100 + listen.ts_us // 1_000_000 for listen in listens)
    with sqlite3.connect(tmp_path / "events.sqlite") as check:
        assert check.execute("SELECT count(*) FROM listens").fetchone() == (500,)
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_latest_and_heard_are_newest_first_with_ties_by_insertion(tmp_path, open_store):
    store: ListenStore = open_store()

    async def scenario():
        for track, ts in ((1, 50), (2, 70), (3, 50), (4, 60), (5, 70)):
            await store.append(9, track, ts)
        await store.append(10, 6, 99)
        return await store.latest(9, 3), (await store.heard(9)).tolist(), await store.latest(11, 5)

    latest, heard, nobody = asyncio.run(scenario())
    assert latest == [(5, 70), (2, 70), (4, 60)]
    assert heard == [5, 2, 4, 3, 1]
    assert nobody == []


def test_latest_listens_read_one_covering_index_without_sorting(tmp_path, open_store):
    store = open_store()
    for query in ("SELECT track_id, ts_us FROM listens WHERE user_id = 1 ORDER BY ts_us DESC, id DESC LIMIT 10",
                  "SELECT track_id FROM listens WHERE user_id = 1 ORDER BY ts_us DESC, id DESC"):
        plan = " ".join(row[-1] for row in store._reader.execute(f"EXPLAIN QUERY PLAN {query}"))
        assert "USING COVERING INDEX listens_latest" in plan and "TEMP B-TREE" not in plan, plan


def test_a_closed_store_refuses_writes_and_is_not_ready(tmp_path, open_store):
    store = open_store()
    assert store.ready()
    store.close()
    assert not store.ready()
    with pytest.raises(StoreClosed):
        asyncio.run(store.append(1, 1, 1))
    with pytest.raises(StoreClosed):
        asyncio.run(store.latest(1, 1))


def test_a_failing_read_raises_the_stores_own_error(tmp_path, open_store):
    store = open_store()
    with closing(sqlite3.connect(tmp_path / "events.sqlite")) as other:
        other.execute("DROP TABLE listens")
    with pytest.raises(StoreUnavailable, match="no such table"):
        asyncio.run(store.latest(1, 5))
    with pytest.raises(StoreUnavailable, match="no such table"):
        asyncio.run(store.heard(1))


def test_an_unopenable_database_raises_the_stores_own_error(tmp_path, open_store):
    (tmp_path / "events.sqlite").mkdir()  # a folder where the file should be
    with pytest.raises(StoreUnavailable, match="opening"):
        open_store()


def test_only_the_store_knows_the_backend():
    """The HTTP layer handles ``StoreUnavailable`` only; a second backend must not need changes there."""
    for module in Path("src/service").glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert module.name == "store.py" or "sqlite3" not in imported, module


def test_settings_from_params_with_environment_overrides(tmp_path):
    settings = load_settings({"RECSYS_PARAMS": str(write_service_params(tmp_path))})
    assert settings.bundle_dir == tmp_path / "bundle" and settings.events_db == tmp_path / "online/events.sqlite"
    assert (settings.host, settings.port, settings.synchronous, settings.write_token) == ("127.0.0.1", 8000, "NORMAL", None)
    overridden = settings_from(SERVICE_PARAMS, tmp_path, {"RECSYS_PORT": "9001", "RECSYS_BUNDLE_DIR": "b",
                                                          "RECSYS_EVENTS_DB": "e.db", "RECSYS_HOST": "::1",
                                                          "RECSYS_EVENTS_SYNCHRONOUS": "full"})
    assert (overridden.port, str(overridden.bundle_dir), str(overridden.events_db)) == (9001, "b", "e.db")
    assert overridden.synchronous == "FULL" and overridden.loopback


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


def test_a_request_reads_a_bounded_number_of_latest_listens(tmp_path, open_store):
    store = open_store(max_listens=4)

    async def scenario():
        for ts in range(1, 11):
            await store.append(5, 100 + ts, ts)
        return (await store.heard(5)).tolist()

    assert asyncio.run(scenario()) == [110, 109, 108, 107]  # the 4 latest, newest first


def test_a_failed_batch_is_reported_and_the_writer_keeps_going(tmp_path, open_store):
    """A locked database fails the batch with StoreUnavailable; the next write still commits."""
    store = open_store(busy_timeout_s=0.05)

    async def write():
        return await store.append(1, 2, 3)

    with closing(sqlite3.connect(tmp_path / "events.sqlite", isolation_level=None)) as blocker:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="locked"):
            asyncio.run(write())
        blocker.execute("ROLLBACK")
    assert asyncio.run(write()).track_id == 2
