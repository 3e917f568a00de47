"""CORS for the API routes: the preflight (a route of its own on every API path) and the
headers on every API answer."""

from __future__ import annotations

import re

from aiohttp import web

from .. import keys

__all__ = ["add_cors_headers", "preflight"]

_ADMIN_PREFIX = "/admin"

_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_DEFAULT_HEADERS = ("Authorization, Content-Type, Accept, OpenAI-Organization, OpenAI-Project, "
                    "X-Stainless-*, x-api-key, anthropic-version, anthropic-beta")
_EXPOSE = ("x-dropped-params, x-should-retry, retry-after, retry-after-ms, x-proxy-overhead-ms, "
           "x-structured-output")


def _allowed_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    if origin is None or request.path.startswith(_ADMIN_PREFIX):
        return None
    allowed = request.app[keys.SETTINGS].cors_allow_origins
    if "*" in allowed:
        return "*"
    return origin if origin.rstrip("/") in allowed else None


async def preflight(request: web.Request) -> web.StreamResponse:
    """``OPTIONS`` on every API route: the CORS preflight. Never allows credentials.

    A route handler rather than a middleware, so ordinary requests pay nothing for it.
    """
    resource = request.match_info.route.resource
    methods = ", ".join(sorted({r.method for r in resource} - {"*", "HEAD"})
                        if resource is not None else ["OPTIONS"])  # the route's own methods
    resp = web.Response(status=204, headers={"Allow": methods})
    if "Origin" not in request.headers or "Access-Control-Request-Method" not in request.headers:
        return resp
    allow = _allowed_origin(request)
    if allow:
        requested = request.headers.get("Access-Control-Request-Headers", "")
        names = [h.strip() for h in requested.split(",") if h.strip()]
        resp.headers["Access-Control-Allow-Origin"] = allow
        resp.headers["Access-Control-Allow-Methods"] = methods
        resp.headers["Access-Control-Allow-Headers"] = (
            ", ".join(n for n in names if _TOKEN.match(n) and n.lower() != "cookie")
            or _DEFAULT_HEADERS)
        resp.headers["Access-Control-Max-Age"] = "600"
    if allow != "*":
        resp.headers["Vary"] = "Origin"
    return resp


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: CORS headers on every API answer, streams included."""
    if "Origin" not in request.headers or "Access-Control-Allow-Origin" in response.headers:
        return
    allow = _allowed_origin(request)
    if allow:
        response.headers["Access-Control-Allow-Origin"] = allow
        response.headers["Access-Control-Expose-Headers"] = _EXPOSE
    if allow != "*" and not request.path.startswith(_ADMIN_PREFIX):
        response.headers.add("Vary", "Origin")
