"""The app's middleware (errors in each face's envelope, the end of every observed request
for metrics and the usage log), and CORS for the API routes.

One middleware, not one per concern: every coroutine layer around a handler is resumed on
each of a stream's network reads."""

from __future__ import annotations

import asyncio
import logging
import re
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from .. import keys
from ..errors import InternalError, MethodNotAllowed, NotFound, ProxyError, RequestTooLarge
from ..jsonlib import dumps
from ..team.gate import ARRIVED, request_ended
from ..translate.messages_encode import error_body, error_status
from .messages import is_anthropic

__all__ = ["add_cors_headers", "error_middleware", "error_response", "preflight"]

log = logging.getLogger(__name__)

_ADMIN_PREFIX = "/admin"
#: How much of an error message goes into the log line.
_LOGGED = 300


def error_response(err: ProxyError, request: web.BaseRequest | None = None) -> web.Response:
    """The error in the envelope of the request's face: Anthropic's for the Messages face,
    OpenAI's for every other."""
    headers = err.response_headers()
    if err.status >= 500 and err.retryable is None and "retry-after" in headers:
        headers.setdefault("x-should-retry", "true")
    if request is not None and is_anthropic(request):
        return web.Response(status=error_status(err), body=dumps(error_body(err)),
                            headers=headers, content_type="application/json")
    return web.Response(status=err.status, body=dumps(err.body()), headers=headers,
                        content_type="application/json")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors become responses in the face's envelope; an observed API request is recorded
    (:func:`~..team.gate.request_ended`) with the status it ended with."""
    request[ARRIVED] = time.perf_counter()
    response: web.StreamResponse | None = None
    status, cancelled = 500, False  # what a request that ends without a response counts as
    try:
        response = await handler(request)
    except ProxyError as err:
        # One line per failed request with the reason (never a key: messages hold none).
        # Cut short: some messages quote a bot's answer (the user's content).
        log.log(logging.WARNING if err.status >= 500 else logging.INFO,
                "%s %s -> %d %s: %s", request.method, request.path, err.status,
                err.code or err.type, err.message if len(err.message) <= _LOGGED
                else err.message[:_LOGGED] + "…")
        response = error_response(err, request)
    except web.HTTPException as exc:
        if exc.status < 400 or request.path.startswith(_ADMIN_PREFIX):
            status = exc.status
            raise
        response = error_response(_from_http_exception(request, exc), request)
    except asyncio.CancelledError:
        cancelled = True  # the client left
        raise
    except ConnectionResetError:
        raise
    except Exception:
        log.exception("Unhandled error on %s %s", request.method, request.path)
        response = error_response(InternalError("The server had an internal error."), request)
    finally:
        request_ended(request, status if response is None else response.status, cancelled)
    return response


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> ProxyError:
    if exc.status == 404:
        return NotFound(f"Unknown path: {request.method} {request.path}")
    if exc.status == 405:
        allowed = sorted(getattr(exc, "allowed_methods", ()) or ())
        return MethodNotAllowed(
            f"Method {request.method} is not allowed on {request.path}"
            + (f"; use {', '.join(allowed)}." if allowed else "."),
            headers={"Allow": ", ".join(allowed)} if allowed else None,
        )
    if exc.status == 413:
        limit = request.app[keys.SETTINGS].max_request_size
        return RequestTooLarge(
            f"The request body is larger than MAX_REQUEST_SIZE ({limit} bytes).")
    err = ProxyError(exc.reason or "Request failed")
    err.status = exc.status  # type: ignore[misc]
    err.type = "invalid_request_error" if exc.status < 500 else "server_error"  # type: ignore[misc]
    err.code = None  # type: ignore[misc]
    return err


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
    resp = web.Response(status=204, headers={"Allow": "GET, POST, DELETE, OPTIONS"})
    if "Origin" not in request.headers or "Access-Control-Request-Method" not in request.headers:
        return resp
    allow = _allowed_origin(request)
    if allow:
        requested = request.headers.get("Access-Control-Request-Headers", "")
        names = [h.strip() for h in requested.split(",") if h.strip()]
        resp.headers["Access-Control-Allow-Origin"] = allow
        resp.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
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
