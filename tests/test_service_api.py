"""The service's HTTP API against the real app (in-process ASGI client) and the tiny hand-made bundle."""
from __future__ import annotations

import sqlite3
from contextlib import closing

import numpy as np
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from src.recsys.serving.blend import LIST_SOURCES, blend_for_user
from src.recsys.serving.bundle_builder import build_bundle
from src.service.app import create_app
from src.service.schemas import ErrorBody, Recommendations
from tests.helpers.bundles import COURSE_CASES, NO_SIMILAR, NOT_LISTENED, UNNAMED, random_frames, save_and_open
from tests.helpers.service import settings_for

TOKEN = "s3cret-token"


def listen(client, user_id, track_id, timestamp=None, **kwargs):
    body = {"track_id": track_id} if timestamp is None else {"track_id": track_id, "timestamp": timestamp}
    return client.post(f"/users/{user_id}/listens", json=body, **kwargs)


def items(response, field="track_id"):
    assert response.status_code == 200, response.text
    return [item[field] for item in response.json()["items"]]


# ---------------------------------------------------------------- the course's three cases


def name(track: int) -> str | None:
    return None if track == UNNAMED else f"Song {track}"


@pytest.mark.parametrize("case", COURSE_CASES.values(), ids=COURSE_CASES.keys())
def test_the_course_cases(tiny, case):
    """test_serving.py's cases through HTTP: the listens go through the store, the names come from the catalog."""
    for n, track in enumerate(case.listens):
        assert listen(tiny, case.user_id, track, 1_671_000_000 + n).status_code == 201
    response = tiny.get(f"/users/{case.user_id}/recommendations", params={"k": case.k})
    body = response.json()
    assert (body["user_id"], body["mode"], body["k"], body["cold"]) == (case.user_id, "blended", case.k, case.cold)
    assert items(response) == case.tracks and items(response, "source") == case.sources
    assert items(response, "name") == [name(track) for track in case.tracks]


def test_cold_user_with_history_gets_popular_minus_what_they_heard(tiny):
    # user 102 heard 1 in train and has no personal list; then hears 2 online
    assert listen(tiny, 102, 2, "2022-12-20T10:00:00Z").status_code == 201
    assert items(tiny.get("/users/102/recommendations/offline", params={"k": 3})) == [3, 4, 5]


def test_the_debugging_views_show_one_side_each(tiny):
    for n, track in enumerate((2, 4)):  # user 101 heard 3 in train
        listen(tiny, 101, track, 1_671_000_000 + n)
    online = tiny.get("/users/101/recommendations/online", params={"k": 4})
    assert items(online) == [12, 11, 10, 1] and items(online, "source") == ["online"] * 3 + ["popular"]
    offline = tiny.get("/users/101/recommendations/offline", params={"k": 4})
    assert items(offline) == [7, 8, 1, 5] and items(offline, "source") == ["offline"] * 2 + ["popular"] * 2


# ---------------------------------------------------------------- the properties of every list


@pytest.mark.parametrize("seed", [1, 2])
def test_random_users_and_listens_keep_every_property(tmp_path, seed):
    """Random listen sequences: every answer equals `blend_for_user` given ALL listens, newest first, and holds the rules."""
    rng = np.random.default_rng(seed)
    bundle = save_and_open(build_bundle(**random_frames(seed)), tmp_path / "bundle")
    settings = settings_for(tmp_path)
    catalog = bundle.catalog.track_ids
    names = dict(zip(catalog.tolist(), bundle.catalog.names(catalog)))
    online: dict[int, list[tuple[int, int, int]]] = {}  # user -> (timestamp, id, track)
    with TestClient(create_app(settings, bundle)) as client:
        for _ in range(250):
            user = int(rng.integers(0, 70))  # 60 known users (half with personal lists), some unknown
            for _ in range(int(rng.integers(0, 4))):
                track, stamp = int(rng.choice(catalog)), int(1_671_000_000 + rng.integers(0, 50))  # equal stamps too
                answer = listen(client, user, track, stamp).json()
                online.setdefault(user, []).append((stamp, answer["id"], track))
            heard_online = [track for _, _, track in sorted(online.get(user, []), reverse=True)]
            heard = set(heard_online) | set(bundle.history.row(user)[0].tolist())
            k = int(rng.integers(1, 40))
            for mode, path in (("blended", ""), ("offline", "/offline"), ("online", "/online")):
                body = client.get(f"/users/{user}/recommendations{path}", params={"k": k}).json()
                Recommendations.model_validate(body)
                tracks = [item["track_id"] for item in body["items"]]
                assert len(tracks) == min(k, len(set(bundle.popular.tolist()) - heard))
                assert len(set(tracks)) == len(tracks)
                assert not heard & set(tracks)
                assert all(item["source"] in LIST_SOURCES and item["name"] == names[item["track_id"]] for item in body["items"])
                expected = blend_for_user(bundle, user, np.array(heard_online, dtype=np.int32), k, bundle.blend, mode)
                assert tracks == expected.track_ids.tolist()
                assert [item["source"] for item in body["items"]] == [LIST_SOURCES[s] for s in expected.sources]
                assert body["cold"] == expected.cold


# ---------------------------------------------------------------- listens and similar tracks


def test_listens_are_read_latest_first_by_timestamp_then_insertion(tiny):
    first = listen(tiny, 5, 10, "2022-12-20T10:00:00Z").json()
    listen(tiny, 5, 11, 1671530400)  # the same instant as epoch seconds: later insertion comes first
    listen(tiny, 5, 5, "2022-12-19T10:00:00+02:00")
    assert first == {"id": first["id"], "user_id": 5, "track_id": 10, "timestamp": "2022-12-20T10:00:00Z"}
    body = tiny.get("/users/5/listens", params={"limit": 2}).json()
    assert body == {"user_id": 5, "listens": [
        {"track_id": 11, "name": "Song 11", "timestamp": "2022-12-20T10:00:00Z"},
        {"track_id": 10, "name": "Song 10", "timestamp": "2022-12-20T10:00:00Z"}]}
    everything = tiny.get("/users/5/listens", params={"limit": 1000}).json()["listens"]
    assert [entry["track_id"] for entry in everything] == [11, 10, 5]
    assert everything[2]["timestamp"] == "2022-12-19T08:00:00Z"
    assert tiny.get("/users/6/listens").json() == {"user_id": 6, "listens": []}


def test_a_listen_without_timestamp_is_now_and_names_may_be_missing(tiny):
    body = listen(tiny, 5, UNNAMED).json()
    assert body["timestamp"].startswith("20") and body["timestamp"].endswith("Z")
    assert tiny.get("/users/5/listens").json()["listens"] == [{"track_id": UNNAMED, "name": None,
                                                                "timestamp": body["timestamp"]}]
    assert listen(tiny, 5, NOT_LISTENED).status_code == 201  # in the catalog, though nobody heard it in train


def test_similar_tracks(tiny):
    body = tiny.get("/tracks/1/similar", params={"k": 1}).json()
    assert body == {"track_id": 1, "name": "Song 1", "items": [{"track_id": 9, "name": "Song 9", "score": 0.9}]}
    assert [item["score"] for item in tiny.get("/tracks/1/similar").json()["items"]] == [0.9, 0.5]
    assert tiny.get(f"/tracks/{NO_SIMILAR}/similar").json()["items"] == []  # known, but nothing similar
    missing = tiny.get("/tracks/12345/similar")
    assert missing.status_code == 404 and "12345" in missing.json()["error"]


# ---------------------------------------------------------------- bad input: a clear 4xx, never a 500


BAD_REQUESTS = [
    ("GET", "/users/abc/recommendations", None, 422, "user_id"),
    ("GET", "/users/-1/recommendations", None, 422, "user_id"),
    ("GET", "/users/1.5/recommendations/offline", None, 422, "user_id"),
    ("GET", "/users/99999999999/recommendations", None, 422, "user_id"),
    ("GET", "/users/1/recommendations?k=0", None, 422, "k"),
    ("GET", "/users/1/recommendations/online?k=101", None, 422, "k"),
    ("GET", "/users/1/recommendations?k=ten", None, 422, "k"),
    ("GET", "/users/1/listens?limit=1001", None, 422, "limit"),
    ("GET", "/tracks/-3/similar", None, 422, "track_id"),
    ("GET", "/tracks/10/similar?k=0", None, 422, "k"),
    ("POST", "/users/x/listens", b'{"track_id": 10}', 422, "user_id"),
    ("POST", "/users/1/listens", b'{"track_id": 10', 400, "malformed JSON"),
    ("POST", "/users/1/listens", b"", 400, "malformed JSON"),
    ("POST", "/users/1/listens", b"[1, 2]", 422, "body"),
    ("POST", "/users/1/listens", b"{}", 422, "track_id: required"),
    ("POST", "/users/1/listens", b'{"track_id": "10"}', 422, "track_id"),
    ("POST", "/users/1/listens", b'{"track_id": 10.5}', 422, "track_id"),
    ("POST", "/users/1/listens", b'{"track_id": true}', 422, "track_id"),
    ("POST", "/users/1/listens", b'{"track_id": -10}', 422, "track_id"),
    ("POST", "/users/1/listens", b'{"track_id": 99999}', 422, "unknown track 99999"),
    ("POST", "/users/1/listens", b'{"track_id": 10, "timestamp": "2999-01-01T00:00:00Z"}', 422, "in the future"),
    ("POST", "/users/1/listens", b'{"track_id": 10, "timestamp": 99999999999}', 422, "in the future"),
    ("POST", "/users/1/listens", b'{"track_id": 10, "timestamp": "yesterday"}', 422, "ISO 8601"),
    ("POST", "/users/1/listens", b'{"track_id": 10, "timestamp": -5}', 422, "before 1970"),
    ("POST", "/users/1/listens", b'{"track_id": 10, "timestamp": NaN}', 400, "malformed JSON"),
    ("POST", "/users/1/listens", b'{"track_id": 10, "timestamp": 1e308}', 422, "in the future"),
    ("POST", "/users/1/listens", b'{"track_id": 10, "timestmap": "2022-12-20"}', 422, "timestmap"),
    ("POST", "/users/1/listens", b'{"track_id": 10, "timestamp": [1]}', 422, "timestamp"),
    ("POST", "/users/1/listens", b'{"track_id": 10, "pad": "' + b"x" * 5000 + b'"}', 413, "limit is 4096"),
    ("GET", "/no/such/path", None, 404, "no such endpoint"),
    ("DELETE", "/users/1/listens", None, 405, "not allowed"),
]


@pytest.mark.parametrize("method, url, body, status, mentions", BAD_REQUESTS)
def test_bad_requests_get_a_clear_4xx(tiny, method, url, body, status, mentions):
    response = tiny.request(method, url, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert mentions in response.json()["error"]
    assert tiny.get("/users/1/listens").json()["listens"] == []  # nothing was written


def test_an_oversized_body_is_refused_even_without_content_length(tiny):
    chunks = (b"x" * 1024 for _ in range(8))  # a streamed body: no Content-Length header
    response = tiny.post("/users/1/listens", content=chunks)
    assert response.status_code == 413


def test_writes_need_the_token_when_one_is_set(tmp_path, tiny_mapped):
    with TestClient(create_app(settings_for(tmp_path, RECSYS_WRITE_TOKEN=TOKEN), tiny_mapped)) as client:
        assert listen(client, 1, 10).status_code == 401
        wrong = listen(client, 1, 10, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "RECSYS_WRITE_TOKEN" in wrong.json()["error"]
        assert listen(client, 1, 10, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 201
        assert len(client.get("/users/1/listens").json()["listens"]) == 1  # reads stay open


# ---------------------------------------------------------------- durability, health, metrics, docs


def test_acknowledged_listens_survive_a_restart(tmp_path, tiny_mapped):
    settings = settings_for(tmp_path)
    with TestClient(create_app(settings, tiny_mapped)) as client:
        ids = [listen(client, 8, track, 1_671_000_000 + track).json()["id"] for track in (9, 10, 11)]
    with TestClient(create_app(settings, tiny_mapped)) as client:
        assert [entry["track_id"] for entry in client.get("/users/8/listens").json()["listens"]] == [11, 10, 9]
        assert listen(client, 8, 5).json()["id"] == max(ids) + 1
        assert not {5, 9, 10, 11} & set(items(client.get("/users/8/recommendations", params={"k": 12})))


def test_health_ready_and_version(tmp_path, tiny_bundle_dir, tiny_mapped):
    app = create_app(settings_for(tmp_path, RECSYS_BUNDLE_DIR=tiny_bundle_dir))  # mapped at startup from the settings
    with TestClient(app) as client:
        assert client.get("/health").json() == {"status": "ok", "bundle_version": tiny_mapped.version,
                                                "blend": tiny_mapped.blend.to_dict()}
        assert client.get("/ready").json()["ready"] is True
        assert client.get("/users/1/recommendations").json()["bundle_version"] == tiny_mapped.version
        app.state.service.store.close()
        not_ready = client.get("/ready")
        assert not_ready.status_code == 503 and "event store" in not_ready.json()["error"]


def test_methods_follow_rfc_9110_and_metrics_are_documented_as_text(tiny):
    """What the API fuzzer (schemathesis) found: HEAD /health was 405, OPTIONS on listens said `Allow: POST`
    though GET is served there too, and /metrics was documented as JSON."""
    head = tiny.head("/health")
    assert head.status_code == 200 and head.content == b"" and head.headers["content-type"] == "application/json"
    assert tiny.head("/users/100/recommendations").status_code == 200
    options = tiny.options("/users/1/listens")
    assert options.status_code == 204 and options.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    refused = tiny.delete("/users/1/listens")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert refused.json() == {"error": "method DELETE is not allowed on /users/1/listens (see /docs)"}
    assert tiny.put("/health").headers["allow"] == "GET, HEAD, OPTIONS"
    assert tiny.options("/nowhere").status_code == 404
    spec = tiny.get("/openapi.json").json()
    assert list(spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    assert tiny.get("/metrics").headers["content-type"].startswith("text/plain")
    assert all(set(operations) <= {"get", "post"} for operations in spec["paths"].values())  # HEAD stays undocumented


def test_metrics_count_requests_by_route_sources_and_cold_answers(tiny):
    tiny.get("/users/999/recommendations", params={"k": 4})  # cold: 4 popular
    tiny.get("/users/100/recommendations", params={"k": 3})  # 3 offline
    tiny.get("/users/101/recommendations", params={"k": 5})  # 2 offline + 3 popular
    tiny.get("/users/abc/recommendations")
    tiny.request("BREW", "/users/1/recommendations")  # a method of the client's choosing is not a label value
    text = tiny.get("/metrics").text
    assert 'method="OTHER"' in text and "BREW" not in text
    assert 'recsys_http_requests_total{method="GET",route="/users/{user_id}/recommendations",status="200"} 3.0' in text
    assert 'recsys_http_requests_total{method="GET",route="/users/{user_id}/recommendations",status="422"} 1.0' in text
    assert 'recsys_http_request_seconds_count{method="GET",route="/users/{user_id}/recommendations"} 4.0' in text
    assert 'recsys_items_served_total{mode="blended",source="offline"} 5.0' in text
    assert 'recsys_items_served_total{mode="blended",source="popular"} 7.0' in text
    assert 'recsys_cold_responses_total{mode="blended"} 1.0' in text
    assert 'recsys_bundle_info{version="' in text
    assert "/users/100/" not in text and "/users/999/" not in text  # templates, not raw paths


def test_openapi_documents_every_endpoint(tiny):
    paths = tiny.get("/openapi.json").json()["paths"]
    assert set(paths) >= {"/users/{user_id}/recommendations", "/users/{user_id}/recommendations/offline",
                          "/users/{user_id}/recommendations/online", "/users/{user_id}/listens",
                          "/tracks/{track_id}/similar", "/health", "/ready", "/metrics"}
    post = paths["/users/{user_id}/listens"]["post"]
    assert "track_id" in post["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert "201" in post["responses"] and "422" in post["responses"]


def test_an_unavailable_event_store_answers_503_not_500(tmp_path, tiny_mapped, open_store):
    store = open_store(busy_timeout_s=0.05)
    with TestClient(create_app(settings_for(tmp_path), tiny_mapped, store)) as client:
        with closing(sqlite3.connect(tmp_path / "events.sqlite", isolation_level=None)) as blocker:
            blocker.execute("BEGIN IMMEDIATE")
            locked = client.post("/users/1/listens", json={"track_id": NOT_LISTENED})
            assert locked.status_code == 503 and locked.headers["retry-after"] == "1"
            assert "event store unavailable" in locked.json()["error"]
            blocker.execute("ROLLBACK")
        assert client.post("/users/1/listens", json={"track_id": NOT_LISTENED}).status_code == 201
        with closing(sqlite3.connect(tmp_path / "events.sqlite")) as other:
            other.execute("DROP TABLE listens")  # reads fail too: 503, whatever the backend's own error
        failed = client.get("/users/1/listens")
        assert failed.status_code == 503 and failed.headers["retry-after"] == "1", failed.text
        assert "event store unavailable" in failed.json()["error"]
        for path in ("/users/100/recommendations?k=3", "/users/100/recommendations/offline?k=3"):
            # lists still come from the bundle, marked: the offline list, online listens left out
            fallback = client.get(path)
            assert fallback.status_code == 200 and "event store unavailable" in fallback.json()["degraded"]
            assert [item["source"] for item in fallback.json()["items"]] == ["offline"] * 3
        assert 'recsys_degraded_responses_total 2.0' in client.get("/metrics").text
        store.close()  # shutting down: reads and writes are refused with 503 too
        closed = client.post("/users/1/listens", json={"track_id": NOT_LISTENED})
        assert closed.status_code == 503 and "closed" in closed.json()["error"]
        assert client.get("/users/1/listens").status_code == 503


# ---------------------------------------------------------------- every answer has its documented shape


RESPONSE_CASES = [  # (method, route template, url, body, status); user 101 has written one listen before
    ("GET", "/users/{user_id}/recommendations", "/users/101/recommendations?k=12", None, 200),
    ("GET", "/users/{user_id}/recommendations/offline", "/users/999/recommendations/offline", None, 200),
    ("GET", "/users/{user_id}/recommendations/online", "/users/101/recommendations/online", None, 200),
    ("POST", "/users/{user_id}/listens", "/users/101/listens", {"track_id": UNNAMED, "timestamp": 1_671_000_000.5}, 201),
    ("GET", "/users/{user_id}/listens", "/users/101/listens", None, 200),
    ("GET", "/tracks/{track_id}/similar", "/tracks/1/similar", None, 200),
    ("GET", "/health", "/health", None, 200),
    ("GET", "/ready", "/ready", None, 200),
    ("GET", "/tracks/{track_id}/similar", "/tracks/12345/similar", None, 404),
    ("POST", "/users/{user_id}/listens", "/users/1/listens", {"track_id": "ten"}, 422),
]


def response_models(app) -> dict[tuple[str, str], type]:
    return {(method, route.path): route.response_model for route in app.routes
            if isinstance(route, APIRoute) and route.response_model is not None for method in route.methods}


def test_every_route_with_a_response_model_has_a_case(tiny):
    assert {(method, path) for method, path, *_ in RESPONSE_CASES} == set(response_models(tiny.app))


@pytest.mark.parametrize("method, route, url, body, status", RESPONSE_CASES)
def test_every_answer_is_exactly_its_response_model(tiny, method, route, url, body, status):
    """Handlers write orjson bytes past FastAPI's validation: the JSON must still be the documented model."""
    listen(tiny, 101, 2, 1_671_000_000)
    response = tiny.request(method, url, json=body)
    assert response.status_code == status, response.text
    model = response_models(tiny.app)[method, route] if status < 400 else ErrorBody
    dumped = model.model_validate_json(response.content, strict=True).model_dump(mode="json", exclude_unset=True)
    assert dumped == response.json()  # optional fields (``degraded``) are left out unless set


def test_a_client_that_hangs_up_mid_body_is_counted_as_closed_not_as_a_500(tiny):
    messages = iter([{"type": "http.request", "body": b'{"track_id"', "more_body": True}, {"type": "http.disconnect"}])
    sent = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/users/1/listens", "raw_path": b"/users/1/listens", "root_path": "", "query_string": b"",
             "headers": [(b"content-type", b"application/json")], "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 80)}
    tiny.portal.call(tiny.app, scope, receive, send)
    assert sent == []  # nobody to answer
    text = tiny.get("/metrics").text
    assert 'recsys_http_requests_total{method="POST",route="<unmatched>",status="499"} 1.0' in text
    assert 'status="500"' not in text
