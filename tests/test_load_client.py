"""The load driver's HTTP client (``benchmarks/load/http_client.py``) against the real server process."""
from __future__ import annotations

import asyncio

import pytest

from benchmarks.load.http_client import ERRORS, HttpClient
from tests.helpers.server_process import free_port
from tests.helpers.bundles import tiny_bundle


@pytest.mark.slow  # a real server
def test_the_client_reads_each_answers_status_on_kept_alive_connections(tmp_path, start_service):
    tiny_bundle(tmp_path / "bundle")
    server = start_service(tmp_path)

    async def scenario():
        client = HttpClient(server.url, connections=2, timeout=5)
        write = client.format("POST", "/users/1/listens", b'{"track_id": 4}', {"Content-Type": "application/json"})
        statuses = await asyncio.gather(*(client.request(raw) for raw in [
            client.format("GET", "/health"), write, client.format("GET", "/users/1/recommendations?k=3"),
            client.format("GET", "/nowhere"), client.format("POST", "/users/1/listens", b'{"track_id":'),
        ] * 4))
        opened = client.open
        client.close()
        return statuses, opened

    statuses, opened = asyncio.run(scenario())
    assert statuses == [200, 201, 200, 404, 400] * 4
    assert opened <= 2  # 20 requests, at most 2 connections: the rest waited and reused them


def test_no_server_is_an_error_not_a_status():
    async def scenario():
        client = HttpClient(f"http://127.0.0.1:{free_port()}", connections=1, timeout=2)
        return await client.request(client.format("GET", "/health"))

    with pytest.raises(ERRORS):
        asyncio.run(scenario())
