"""The real server process (`python -m src.service`) over HTTP: startup checks and kill -9 durability."""
from __future__ import annotations

import asyncio
import signal
import sqlite3
from contextlib import closing

import httpx
import pytest

from tests.helpers.bundles import tiny_bundle
from tests.helpers.server_process import free_port
from tests.helpers.service import kill_while_writing, service_command

pytestmark = pytest.mark.slow  # a real `python -m src.service` per test


def test_acknowledged_listens_survive_kill_9(tmp_path, start_service):
    tiny_bundle(tmp_path / "bundle")
    server = start_service(tmp_path)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/health").json()["status"] == "ok"
        acknowledged = []
        for n in range(40):
            response = client.post(f"/users/{n % 4}/listens", json={"track_id": 1 + n % 12,
                                                                     "timestamp": 1_671_000_000 + n})
            assert response.status_code == 201, response.text
            acknowledged.append(response.json())
        first = client.get("/users/1/recommendations", params={"k": 5}).json()
    in_flight = asyncio.run(kill_while_writing(server.url, lambda: server.stop(signal.SIGKILL), user_id=7, writes=300,
                                               kill_after=60))
    assert server.process.returncode == -signal.SIGKILL
    restarted = start_service(tmp_path)
    with httpx.Client(base_url=restarted.url, timeout=10) as client:
        for user in range(4):
            stored = client.get(f"/users/{user}/listens", params={"limit": 1000}).json()["listens"]
            expected = [listen for listen in reversed(acknowledged) if listen["user_id"] == user]
            assert [(s["track_id"], s["timestamp"]) for s in stored] == \
                [(e["track_id"], e["timestamp"]) for e in expected]
        assert client.get("/users/1/recommendations", params={"k": 5}).json() == first
        stored_ids = {listen["timestamp"] for listen in
                      client.get("/users/7/listens", params={"limit": 1000}).json()["listens"]}
        assert len(in_flight) >= 60 and {listen["timestamp"] for listen in in_flight} <= stored_ids
        metrics = client.get("/metrics").text
        assert 'route="/users/{user_id}/listens"' in metrics and "_created" not in metrics


def test_refuses_a_public_address_without_token_and_a_missing_bundle(tmp_path):
    tiny_bundle(tmp_path / "bundle")
    exposed = service_command(tmp_path, {"RECSYS_HOST": "0.0.0.0"})
    assert exposed.returncode == 2 and "RECSYS_WRITE_TOKEN" in exposed.stderr
    missing = service_command(tmp_path, {"RECSYS_BUNDLE_DIR": str(tmp_path / "nowhere")})
    assert missing.returncode == 2 and "dvc repro serving" in missing.stderr


def test_a_newer_schema_or_an_unreachable_database_stops_the_service_with_a_message(tmp_path, postgres_server):
    tiny_bundle(tmp_path / "bundle")
    (tmp_path / "online").mkdir()
    with closing(sqlite3.connect(tmp_path / "online/events.sqlite")) as events:
        events.execute("PRAGMA user_version=99")
    newer = service_command(tmp_path)
    assert newer.returncode == 2 and "schema version 99 is newer" in newer.stderr, newer.stderr
    url = postgres_server.new_database()
    postgres_server.execute("CREATE TABLE listens (who text)", url.rsplit("/", 1)[1])
    foreign = service_command(tmp_path, {"RECSYS_EVENTS_URL": url})
    assert foreign.returncode == 2 and "not this service's schema" in foreign.stderr, foreign.stderr
    nobody = service_command(tmp_path, {"RECSYS_EVENTS_URL": f"postgresql://me:secret@127.0.0.1:{free_port()}/x"})
    assert nobody.returncode == 2 and "cannot be opened" in nobody.stderr and "secret" not in nobody.stderr
