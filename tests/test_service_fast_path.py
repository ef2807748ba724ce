"""The fast path (``src/service/fast_path.py``) answers exactly as the app does, and only plainly valid requests."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from src.service import fast_path
from src.service.app import create_app
from tests.helpers.service import settings_for

REQUESTS = [  # (method, path, body, whether the fast path answers it)
    ("GET", "/users/1/recommendations", None, True),
    ("GET", "/users/2/recommendations?k=3", None, True),
    ("GET", "/users/999999/recommendations?k=100", None, True),  # a cold user
    ("POST", "/users/2/listens", b'{"track_id": 7, "timestamp": "2022-12-20T10:00:00Z"}', True),
    ("POST", "/users/2/listens", b'{"track_id": 8, "timestamp": 1671000000}', True),
    ("GET", "/users/2/recommendations?k=5", None, True),  # now with online listens
    ("GET", "/users/2/recommendations?k=0", None, False),
    ("GET", "/users/2/recommendations?k=101", None, False),
    ("GET", "/users/2/recommendations?k=05", None, False),
    ("GET", "/users/2/recommendations?k=5&x=1", None, False),
    ("GET", "/users/-1/recommendations", None, False),
    ("GET", "/users/007/recommendations", None, False),
    ("GET", "/users/2147483648/recommendations", None, False),
    ("GET", "/users/2147483647/recommendations", None, True),
    ("HEAD", "/users/2/recommendations", None, False),
    ("POST", "/users/3/listens", b'{"track_id": 999999, "timestamp": 1}', False),  # not in the catalog: 422
    ("POST", "/users/3/listens", b'{"track_id": "7", "timestamp": 1}', False),
    ("POST", "/users/3/listens", b'{"track_id":', False),
    ("POST", "/users/3/listens", b'{"track_id": 7, "timestmap": 1}', False),
    ("POST", "/users/3/listens", b'{"track_id": 7, "timestamp": 99999999999}', False),
    ("POST", "/users/2147483648/listens", b'{"track_id": 7, "timestamp": 1}', False),
    ("GET", "/users/2/listens?limit=5", None, False),
]


def answers(client: TestClient) -> list[tuple]:
    out = []
    for method, path, body, _ in REQUESTS:
        response = client.request(method, path, content=body)
        out.append((method, path, response.status_code, response.content,
                    response.headers.get("content-type"), response.headers.get("content-length")))
    return out


@pytest.fixture
def passed_on(monkeypatch):
    """The (method, path?query) of every request the fast path hands on to the app."""
    seen: list[tuple[str, str]] = []
    original = fast_path.FastPath.__call__

    async def spy(self, scope, receive, send):
        inner = self.app

        async def app(scope, receive, send):
            if scope["type"] == "http":
                    seen.append((scope["method"], scope["path"] + (f"?{scope['query_string'].decode()}"
                                                              if scope["query_string"] else "")))
            return await inner(scope, receive, send)

        self.app = app
        try:
            return await original(self, scope, receive, send)
        finally:
            self.app = inner

    monkeypatch.setattr(fast_path.FastPath, "__call__", spy)
    return seen


def test_the_fast_path_answers_the_same_bytes_as_the_app(tmp_path, tiny_mapped, monkeypatch, passed_on):
    with TestClient(create_app(settings_for(tmp_path / "fast"), tiny_mapped)) as client:
        fast = answers(client)
        metrics = client.get("/metrics").text
    taken = {(method, path) for method, path, _, fast_one in REQUESTS if fast_one}
    assert taken and not taken & set(passed_on)
    assert {(method, path) for method, path, _, fast_one in REQUESTS if not fast_one} <= set(passed_on)
    assert 'route="/users/{user_id}/recommendations"' in metrics and 'route="/users/{user_id}/listens"' in metrics

    async def app_only(self, scope, receive, send):
        return await self.app(scope, receive, send)

    monkeypatch.setattr(fast_path.FastPath, "__call__", app_only)
    with TestClient(create_app(settings_for(tmp_path / "app"), tiny_mapped)) as client:
        slow = answers(client)
    for one, other in zip(fast, slow):
        assert one == other
