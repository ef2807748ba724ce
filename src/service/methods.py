"""HTTP method rules FastAPI leaves out (RFC 9110): HEAD wherever GET is served, and ``Allow`` naming
every method of the path.

FastAPI routes serve only the methods they declare, and Starlette's 405 lists the methods of the first
route whose path matched, so ``/users/{id}/listens`` (POST and GET, two routes) answered ``Allow: POST``.
"""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.routing import Match


def add_head_routes(app: FastAPI) -> None:
    """A HEAD twin of every GET route (the same handler; uvicorn sends the headers only), kept out of the schema."""
    for route in [route for route in app.router.routes if isinstance(route, APIRoute) and "GET" in route.methods]:
        app.router.add_api_route(route.path, route.endpoint, methods=["HEAD"], include_in_schema=False)


def allowed_methods(request: Request) -> str:
    """The ``Allow`` header for the request's path: every method some route serves there, and OPTIONS."""
    methods = {"OPTIONS"}
    for route in request.app.router.routes:
        if getattr(route, "methods", None) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))
