"""Checks done before a request reaches the app: the body-size limit and the write token.

Plain ASGI wrappers, so an oversized or unauthorised request is refused before any body is parsed.
"""
from __future__ import annotations

import hmac

from .errors import error_response

_READ_METHODS = {"GET", "HEAD", "OPTIONS"}


class BodyLimit:
    """Refuse (413) a request body over ``limit`` bytes; the accepted body is read once and handed on."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in _READ_METHODS:
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                return await error_response(413, f"body: {int(value)} bytes, the limit is {self.limit}")(
                    scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await error_response(413, f"body: more than {self.limit} bytes, the limit is {self.limit}")(
                    scope, receive, send)
            more = message.get("more_body", False)
        return await self.app(scope, replay_body(b"".join(chunks), receive), send)


def replay_body(body: bytes, receive):
    """A ``receive`` that hands an already read body on once, then defers to the client's ``receive``."""
    delivered = False

    async def replay():
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class WriteToken:
    """With a token configured, anything but a read needs ``Authorization: Bearer <token>`` (else 401)."""

    def __init__(self, app, token: str | None):
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope, receive, send):
        if self.expected is None or scope["type"] != "http" or scope["method"] in _READ_METHODS:
            return await self.app(scope, receive, send)
        given = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
        if not hmac.compare_digest(given, self.expected):
            reason = "missing" if not given else "wrong"
            refusal = error_response(401, f"Authorization header: {reason}; writes need 'Bearer <RECSYS_WRITE_TOKEN>'",
                                     {"WWW-Authenticate": "Bearer"})
            return await refusal(scope, receive, send)
        return await self.app(scope, receive, send)
