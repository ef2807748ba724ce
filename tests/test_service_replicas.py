"""Two service replicas on one PostgreSQL, tested through real processes: read-your-writes across replicas,
``kill -9`` of a replica under load, and the database stopped under load and started again.

Each replica is ``python -m src.service`` (what ``scripts/serve.sh`` runs) on a free port, on the same
bundle and the same database. ``RECSYS_TEST_OUTAGE_S`` sets the outage (default 3 s; the shipped
behaviour does not depend on its length: 10 s was run by hand, docs/replicas.md).
"""
from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from tests.helpers.bundles import tiny_bundle
from tests.helpers.replicas import Traffic, start_replicas, stop_all, stored_listens, wait_until_writes_succeed

pytestmark = pytest.mark.slow
OUTAGE_S = float(os.environ.get("RECSYS_TEST_OUTAGE_S", "3"))


@pytest.fixture
def bundle(tmp_path):
    tiny_bundle(tmp_path / "bundle")
    return tmp_path / "bundle"


@pytest.fixture
def replicas(tmp_path, bundle, postgres_server):
    started = start_replicas(tmp_path, bundle, postgres_server.new_database())
    yield started
    stop_all(started)


def test_a_listen_posted_to_one_replica_is_in_the_next_answer_of_the_other(replicas):
    first, second = (httpx.Client(base_url=replica.url, timeout=10) for replica in replicas)
    with first, second:
        for n, (writer, reader) in enumerate([(first, second), (second, first)] * 2):
            before = [item["track_id"] for item in reader.get("/users/100/recommendations", params={"k": 8}).json()["items"]]
            heard = before[0]  # the reader's current first pick: once heard, it must leave the list
            written = writer.post("/users/100/listens", json={"track_id": heard, "timestamp": 1_671_000_000 + n})
            assert written.status_code == 201, written.text
            latest = reader.get("/users/100/listens", params={"limit": 1}).json()["listens"]
            after = [item["track_id"] for item in reader.get("/users/100/recommendations", params={"k": 8}).json()["items"]]
            assert [(item["track_id"], item["timestamp"]) for item in latest] == [(heard, written.json()["timestamp"])]
            assert after != before and heard not in after


def test_acknowledged_listens_survive_kill_9_of_a_replica_while_16_clients_write(replicas):
    victim, survivor = replicas
    with Traffic([victim.url, survivor.url], clients=16) as traffic:
        time.sleep(1.5)
        killed_at = time.monotonic()
        victim.stop(signal.SIGKILL)
        time.sleep(1.5)
    assert victim.process.returncode == -signal.SIGKILL
    to_victim = traffic.between(killed_at, time.monotonic(), "write", replica=0)
    assert to_victim and {answer.status for answer in to_victim} <= {"transport", 201}  # refused after the kill
    survivor_answers = [answer for answer in traffic.answers if answer.replica == 1]
    assert survivor_answers and all(answer.status in (200, 201) for answer in survivor_answers), \
        {answer.status for answer in survivor_answers}  # the other replica kept answering, every request
    assert len(traffic.between(killed_at, time.monotonic(), "write", replica=1)) >= 16
    assert len(traffic.acknowledged) >= 100
    assert set(traffic.acknowledged) <= stored_listens(survivor.url, traffic.users())


def test_a_database_outage_under_load_degrades_and_both_replicas_recover_by_themselves(tmp_path, bundle,
                                                                                       postgres_outage_server):
    database = postgres_outage_server
    replicas = start_replicas(tmp_path, bundle, database.new_database())
    try:
        with Traffic([replica.url for replica in replicas], clients=16) as traffic:
            time.sleep(1.0)
            database.stop()
            down_at = time.monotonic()
            time.sleep(OUTAGE_S)
            up_at = time.monotonic()
            database.start()
            recovered_s = [wait_until_writes_succeed(replica.url) for replica in replicas]
            time.sleep(1.0)
        writes = traffic.between(down_at, up_at, "write")
        reads = traffic.between(down_at, up_at, "read")
        assert writes and {answer.status for answer in writes} == {503}, {answer.status for answer in writes}
        assert reads and {answer.status for answer in reads} == {200}  # lists from the bundle all along
        assert all(answer.degraded for answer in reads[len(reads) // 10:])  # marked (after the in-flight ones)
        assert all(seconds < 5 for seconds in recovered_s), recovered_s
        after = traffic.between(up_at + max(recovered_s) + 0.5, time.monotonic(), "write")
        assert after and {answer.status for answer in after} == {201}, {answer.status for answer in after}
        assert all(replica.process.poll() is None for replica in replicas)  # never restarted
        assert set(traffic.acknowledged) <= stored_listens(replicas[0].url, traffic.users())
        assert not {answer.status for answer in traffic.answers} & {500, "transport"}
    finally:
        stop_all(replicas)
