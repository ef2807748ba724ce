"""The load benchmark's pure parts (``benchmarks/load``): the request mix and the statistics it reports."""
from __future__ import annotations

import numpy as np
import orjson
import pytest

from benchmarks.load.drivers import DROPPED, EXCEPTION, PhaseResult
from benchmarks.load.report import latency_stats, summarise
from benchmarks.load.server import Target, check_loopback
from benchmarks.load.workload import KINDS, LISTEN, RECS_COLD, RECS_RETURNING, RECS_WARM, Mix, make_workload
from src.recsys.serving.bundle_builder import build_bundle
from src.recsys.serving.bundle_reader import ServingBundle
from tests.helpers.bundles import random_frames


@pytest.fixture(scope="module")
def bundle() -> ServingBundle:
    return build_bundle(**random_frames(0))


def user_of(path: str) -> int:
    return int(path.split("/")[2])


def test_the_mix_has_its_shares_of_writes_cold_and_returning_readers(bundle):
    workload = make_workload(bundle, 20_000, Mix(write_share=0.2, cold_share=0.1, returning_share=0.15),
                             np.random.default_rng(0))
    shares = np.bincount(workload.kinds, minlength=len(KINDS)) / len(workload)
    reads = 1 - shares[LISTEN]
    assert shares[LISTEN] == pytest.approx(0.2, abs=0.01)
    assert shares[RECS_COLD] / reads == pytest.approx(0.1, abs=0.01)
    assert shares[RECS_RETURNING] / reads == pytest.approx(0.15, abs=0.01)


def test_each_kind_asks_for_the_users_and_tracks_it_stands_for(bundle):
    workload = make_workload(bundle, 3_000, Mix(k=7), np.random.default_rng(1))
    known, catalog = set(bundle.offline.keys.tolist()), set(bundle.catalog.track_ids.tolist())
    writers: set[int] = set()
    for path, body, kind in zip(workload.paths, workload.bodies, workload.kinds.tolist()):
        user = user_of(path)
        if kind == LISTEN:
            assert path == f"/users/{user}/listens" and user in known
            assert orjson.loads(body)["track_id"] in catalog
            writers.add(user)
            continue
        assert body is None and path == f"/users/{user}/recommendations?k=7"
        assert {RECS_WARM: user in known, RECS_COLD: user not in known, RECS_RETURNING: user in writers}[kind], path


def test_the_mix_is_reproducible_from_the_seed(bundle):
    first, again = (make_workload(bundle, 500, Mix(), np.random.default_rng(5)) for _ in range(2))
    assert first.paths == again.paths and first.bodies == again.bodies


def phase(latency_ms, status, kinds=None, wall_s=2.0) -> PhaseResult:
    kinds = np.zeros(len(status), np.int8) if kinds is None else np.array(kinds, np.int8)
    return PhaseResult(kinds, np.array(latency_ms, float) / 1000, np.array(status, np.int16), wall_s, 0.5, 1.0, 1.5)


def test_latency_statistics_count_only_answered_requests():
    result = phase([1, 2, 3, 4, 100, 5000, 9], [200, 201, 200, 200, 200, 503, EXCEPTION])
    stats = latency_stats(result, np.ones(7, bool))
    assert (stats["requests"], stats["errors"], stats["rps"]) == (7, 2, 2.5)  # 5 answered in 2 s
    assert stats["p50"] == pytest.approx(3.0) and stats["max"] == pytest.approx(100.0)
    assert stats["p99"] == pytest.approx(np.percentile([1, 2, 3, 4, 100], 99))
    assert stats["error_statuses"] == {str(EXCEPTION): 1, "503": 1}
    none = latency_stats(phase([7], [EXCEPTION]), np.ones(1, bool))
    assert none["errors"] == 1 and none["rps"] == 0 and np.isnan(none["p50"])


def test_a_summary_splits_by_kind_and_gives_cpu_as_shares_of_the_wall_time():
    result = phase([1, 2, 3, 4], [200, 200, 201, DROPPED], kinds=[RECS_WARM, RECS_WARM, LISTEN, LISTEN])
    summary = summarise(Target("service", "http://127.0.0.1:1"), result, {}, "open loop")
    assert set(summary["by_kind"]) == {"recs_warm", "listen"}
    assert summary["by_kind"]["recs_warm"]["requests"] == 2 and summary["by_kind"]["listen"]["errors"] == 1
    assert (summary["client_cpu_share"], summary["server_cpu_share"], summary["machine_cpu_share"]) == (0.25, 0.5, 0.75)
    assert summary["startup_s"] is None and summary["rss_ready_mib"] is None


@pytest.mark.parametrize("url", ["http://10.0.0.1:8000", "http://example.com", "http://0.0.0.0:80"])
def test_only_loopback_targets_are_accepted(url):
    with pytest.raises(SystemExit, match="loopback"):
        check_loopback(url)
    check_loopback("http://127.0.0.1:8000")
    check_loopback("http://[::1]:8000")
