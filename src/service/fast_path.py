"""The two hot requests (a blended list, a listen write) answered without FastAPI's routing and
dependency machinery, which cost more CPU than building the list itself.

Only requests that are plainly valid take this path: ``GET /users/<id>/recommendations`` with no query or
``?k=<n>``, and ``POST /users/<id>/listens`` whose body parses and names a catalog track. They call the
very functions the routes call (``routes._recommendations``, ``routes._store_listen``), so the answer is
the same bytes. Anything else (a bad id, another parameter, a malformed body, an unknown track, HEAD) goes
on to the app unchanged, the body replayed, and gets the app's own answer or error. It sits inside the
guards (body limit, write token) and the metrics, and names the route's endpoint in the scope as the
router would, so the metrics label it the same.
"""
from __future__ import annotations

import re

from fastapi.exceptions import RequestValidationError

from . import routes
from .errors import unavailable_response
from .guards import replay_body
from .schemas import MAX_ID, parse_listen
from .store import StoreUnavailable

_ID = r"(0|[1-9][0-9]{0,9})"  # what the app's int validation takes, in canonical form only
_RECOMMENDATIONS = re.compile(rf"/users/{_ID}/recommendations")
_LISTENS = re.compile(rf"/users/{_ID}/listens")
_K = re.compile(rb"k=([1-9][0-9]?|100)")


class FastPath:
    """Pure ASGI: answer the plainly valid hot requests directly, hand everything else to ``app``."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            method = scope["method"]
            if method == "GET" and (match := _RECOMMENDATIONS.fullmatch(scope["path"])):
                query = scope["query_string"]
                k = _K.fullmatch(query) if query else None
                user_id = int(match[1])
                if user_id <= MAX_ID and (k or not query):
                    scope["endpoint"] = routes.blended
                    service = scope["app"].state.service
                    response = await self._answer(scope, routes._recommendations(
                        service, user_id, int(k[1]) if k else 10, "blended"))
                    return await response(scope, receive, send)
            elif method == "POST" and (match := _LISTENS.fullmatch(scope["path"])) and int(match[1]) <= MAX_ID:
                return await self._listen(scope, receive, send, int(match[1]))
        return await self.app(scope, receive, send)

    async def _listen(self, scope, receive, send, user_id: int):
        body, message = b"", {"more_body": True}
        while message.get("more_body", False):
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
        service = scope["app"].state.service
        try:
            listen = parse_listen(body)
        except RequestValidationError:
            listen = None
        if listen is None or not service.known_track(listen.track_id):
            return await self.app(scope, replay_body(body, receive), send)
        scope["endpoint"] = routes.record_listen
        response = await self._answer(scope, routes._store_listen(service, user_id, listen))
        return await response(scope, receive, send)

    @staticmethod
    async def _answer(scope, handler):
        """The handler's response, or the app's 503 when the event store cannot answer."""
        try:
            return await handler
        except StoreUnavailable as error:
            return unavailable_response(scope["method"], scope["path"], error)

