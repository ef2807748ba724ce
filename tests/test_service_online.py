"""Online listens through the real server process: the replay scores exactly what the service serves, with the
blend and re-ranker the search learns (with the shipped search space) on a random world. That three listens
change a warm user's top 10 with the shipped params is checked on the real pipeline's bundle in
``test_pipeline_e2e.py``."""
from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest

from src.recsys.serving.bundle_builder import build_bundle
from src.recsys.serving.bundle_reader import ServingBundle
from src.recsys.serving.online_replay import ReplayCase, listening_sequences, replay_users
from src.recsys.serving.search import search_blend
from tests.helpers.bundles import random_frames, save_and_open
from tests.helpers.sessions import search_config, session_events

REVEAL = 3


@pytest.fixture(scope="module")
def learned() -> tuple[ServingBundle, pd.DataFrame]:
    """A random world whose listens follow the played-next table, and its bundle with the learned blend."""
    built = build_bundle(**random_frames(11, n_users=300, n_tracks=250, list_lengths=(30, 31)))
    cold_ids = np.arange(10_000, 10_100, dtype=np.int32)
    events = pd.concat([session_events(built, follow_played_next=True), session_events(built, True, seed=1, users=cold_ids)])
    learned_only = search_config(strategy=["learned"], cold_strategy=["learned"])  # the path under test
    blend, trees, _ = search_blend(built, listening_sequences(events), learned_only)
    return built.with_blend(blend, trees), events


@pytest.fixture
def served(tmp_path, start_service, learned):
    """The learned bundle saved where the server maps it, the server, and the test events."""
    bundle, events = learned
    return save_and_open(bundle, tmp_path / "bundle"), start_service(tmp_path), events


def post_listens(client: httpx.Client, user: int, tracks) -> None:
    """Post ``tracks`` in listening order (oldest first), one second apart."""
    for n, track in enumerate(tracks):
        response = client.post(f"/users/{user}/listens", json={"track_id": int(track), "timestamp": 1_671_000_000 + n})
        assert response.status_code == 201, response.text


def top(client: httpx.Client, user: int, mode: str = "", k: int = 10) -> list[int]:
    body = client.get(f"/users/{user}/recommendations{mode}", params={"k": k}).json()
    return [item["track_id"] for item in body["items"]]


@pytest.mark.slow  # a real server
def test_the_replay_scores_exactly_what_the_server_serves(served):
    """The replay's lists for users with and without history, every mode, equal the HTTP answers after the
    same listens are posted."""
    bundle, server, events = served
    assert bundle.blend.strategy == "learned" and len(bundle.reranker)  # the learned path is the one compared
    sequences = listening_sequences(events)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for cold in (False, True):
            users = replay_users(sequences, bundle, REVEAL, 6, seed=0, cold=cold)
            case = ReplayCase.prepare(bundle, sequences, users, REVEAL, 10)
            for user, online in zip(users.tolist(), case.online):
                post_listens(client, user, online[::-1])
            for mode, path in (("blended", ""), ("offline", "/offline"), ("online", "/online")):
                replayed = case.served(bundle, bundle.blend, mode)
                assert [top(client, user, path) for user in users.tolist()] == [l.tolist() for l in replayed], mode
            assert len(users) == 6
