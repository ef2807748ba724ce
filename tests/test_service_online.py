"""Online listens through the real server process: the replay scores exactly what the service serves, and with
the shipped blend three listens change a warm user's top 10."""
from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from src.recsys.serving.blend_config import BlendConfig
from src.recsys.serving.bundle import ServingBundle
from src.recsys.serving.replay import ReplayCase, listening_sequences, replay_users
from tests.helpers import REPO_ROOT
from tests.helpers.bundles import random_frames
from tests.test_blend_search import test_events

SHIPPED_BLEND = BlendConfig.from_dict(json.loads((REPO_ROOT / "metrics/blend_search.json").read_text())["chosen"])
REVEAL = 3


@pytest.fixture
def served(tmp_path, start_service):
    """A bundle of the random world with the shipped blend, saved where the server maps it, and the server."""
    built = ServingBundle.build(**random_frames(11, n_users=120, n_tracks=200, list_lengths=(30, 31)))
    bundle = save_bundle_with(built.with_blend(SHIPPED_BLEND), tmp_path / "bundle")
    return bundle, start_service(tmp_path)


def save_bundle_with(bundle: ServingBundle, folder) -> ServingBundle:
    folder.mkdir(parents=True)
    bundle.save(folder)
    return ServingBundle.open(folder)


def post_listens(client: httpx.Client, user: int, tracks) -> None:
    """Post ``tracks`` in listening order (oldest first), one second apart."""
    for n, track in enumerate(tracks):
        response = client.post(f"/users/{user}/listens", json={"track_id": int(track), "timestamp": 1_671_000_000 + n})
        assert response.status_code == 201, response.text


def top(client: httpx.Client, user: int, mode: str = "", k: int = 10) -> list[int]:
    body = client.get(f"/users/{user}/recommendations{mode}", params={"k": k}).json()
    return [item["track_id"] for item in body["items"]]


def test_the_replay_scores_exactly_what_the_server_serves(served):
    """The replay's lists for users with and without history, every mode, equal the HTTP answers after the
    same listens are posted."""
    bundle, server = served
    cold_ids = np.arange(10_000, 10_006, dtype=np.int32)
    events = pd.concat([test_events(bundle, follow_played_next=True), test_events(bundle, True, seed=1, users=cold_ids)])
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


def test_with_the_shipped_blend_three_listens_change_a_warm_users_top_10(served):
    bundle, server = served
    user = int(bundle.offline.keys[0])
    heard = set(bundle.history.row(user)[0].tolist())
    listens = [int(track) for track in bundle.played_next.keys if int(track) not in heard][:3]
    with httpx.Client(base_url=server.url, timeout=10) as client:
        before = top(client, user)
        post_listens(client, user, listens)
        after = client.get(f"/users/{user}/recommendations", params={"k": 10}).json()["items"]
    assert SHIPPED_BLEND.online_weight > 0
    assert [item["track_id"] for item in after] != before
    assert sum(item["source"] == "online" for item in after) >= 1
