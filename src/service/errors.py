"""Every error leaves as ``{"error": "..."}`` with a 4xx that names the field, the expectation and the input.

An event store that cannot answer (locked, shutting down, failing) gives 503 with ``Retry-After``; the
store raises only its own ``StoreUnavailable``, so this layer knows nothing of the backend.

FastAPI's own validation errors are lists of dicts; clients and people read one sentence better.
"""
from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from .methods import allowed_methods
from .store import StoreUnavailable

log = logging.getLogger("service")
_WHERE = {"path": "path parameter", "query": "query parameter", "header": "header", "body": "body"}


def json_response(content: Any, status_code: int = 200) -> Response:
    """orjson bytes straight out: no second validation or encoding pass."""
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def error_response(status_code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The one error body, ``{"error": message}``; also an ASGI app, so the guards send it before routing."""
    response = json_response({"error": message}, status_code)
    if headers:
        response.headers.update(headers)
    return response


def unavailable_response(method: str, path: str, exc: StoreUnavailable) -> Response:
    """503 with ``Retry-After``: the event store cannot answer now (the fast path answers the same)."""
    log.warning("event store unavailable on %s %s: %s", method, path, exc)
    return error_response(503, f"event store unavailable: {exc}; retry shortly", {"Retry-After": "1"})


def describe(error: dict[str, Any]) -> str:
    """One validation error as ``<where> <field>: <expected>, got <input>``."""
    location = list(error.get("loc", ()))
    where = _WHERE.get(str(location[0]), str(location[0])) if location else "request"
    field = ".".join(str(part) for part in location[1:])
    if error.get("type") == "json_invalid":
        return f"body: malformed JSON ({error.get('ctx', {}).get('error', 'cannot be decoded')})"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    subject = f"{where} {field}".strip() if field else where
    if error.get("type") == "missing":
        return f"{subject}: required"
    if error.get("type") == "value_error":  # our own validators name the value already
        return f"{subject}: {message}"
    return f"{subject}: {message}, got {_shown(error.get('input'))}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def install(app: FastAPI) -> None:
    """Register the handlers that give every failure the one error shape."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        status = 400 if any(error.get("type") == "json_invalid" for error in errors) else 422
        return error_response(status, "; ".join(describe(error) for error in errors))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else orjson.dumps(exc.detail).decode()
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        elif exc.status_code == 405:
            allow = allowed_methods(request)
            if request.method == "OPTIONS":  # the path exists: OPTIONS answers which methods it takes
                return Response(status_code=204, headers={"Allow": allow})
            message = f"method {request.method} is not allowed on {request.url.path} (see /docs)"
            return error_response(405, message, {**(exc.headers or {}), "Allow": allow})
        return error_response(exc.status_code, message, exc.headers)

    @app.exception_handler(StoreUnavailable)
    async def unavailable(request: Request, exc: StoreUnavailable) -> Response:
        return unavailable_response(request.method, request.url.path, exc)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}); it is logged on the server")
