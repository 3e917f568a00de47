"""Errors in each face's envelope, and the end of every observed request recorded (for
metrics and the usage log).

Route handlers, not a middleware: aiohttp wraps every request of an app tree in one more
coroutine once any app in it has a middleware, and every open stream holds each layer and
resumes it on each of its network reads. So each API route is :func:`guarded` (the faces'
shared loop does the same inline: :func:`failed`, :func:`request_ended`), an unknown path
is answered by :func:`not_found` and a known path with another method by
:func:`method_not_allowed`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from .. import keys
from ..errors import InternalError, MethodNotAllowed, NotFound, ProxyError, RequestTooLarge
from ..jsonlib import dumps
from ..team.gate import ARRIVED, TEAM, request_ended
from ..translate.messages_encode import error_body, error_status

__all__ = ["error_response", "failed", "guarded", "is_anthropic", "method_not_allowed",
           "not_found", "wants_anthropic_list"]

log = logging.getLogger(__name__)

#: How much of an error message goes into the log line.
_LOGGED = 300
#: The Messages face's paths (its errors use Anthropic's envelope).
_ANTHROPIC_PATHS = ("/messages", "/messages/count_tokens")


def is_anthropic(request: web.BaseRequest) -> bool:
    """Whether errors for this request use Anthropic's envelope."""
    path = request.path.rstrip("/")
    if path.endswith(_ANTHROPIC_PATHS):
        return True
    return "/models" in path and wants_anthropic_list(request)


def wants_anthropic_list(request: web.BaseRequest) -> bool:
    headers = request.headers
    return "anthropic-version" in headers or "x-api-key" in headers


class _UnknownPath(NotFound):
    """A path no route has: it belongs to no face, so an Anthropic client (one that sends
    ``anthropic-version``) gets Anthropic's envelope."""


def error_response(err: ProxyError, request: web.BaseRequest | None = None) -> web.Response:
    """The error in the envelope of the request's face: Anthropic's for the Messages face,
    OpenAI's for every other."""
    headers = err.response_headers()
    if err.status >= 500 and err.retryable is None and "retry-after" in headers:
        headers.setdefault("x-should-retry", "true")
    if request is not None and (is_anthropic(request) or (
            isinstance(err, _UnknownPath) and "anthropic-version" in request.headers)):
        return web.Response(status=error_status(err), body=dumps(error_body(err)),
                            headers=headers, content_type="application/json")
    return web.Response(status=err.status, body=dumps(err.body()), headers=headers,
                        content_type="application/json")


def guarded(handler: Handler) -> Handler:
    """``handler`` with its errors turned into responses in the face's envelope, and its
    end recorded (:func:`~..team.gate.request_ended`) with the status it ended with."""

    @functools.wraps(handler)
    async def guard(request: web.Request) -> web.StreamResponse:
        request[ARRIVED] = time.perf_counter()
        try:
            response = await handler(request)
        except BaseException as exc:
            return failed(request, exc)
        request_ended(request, response.status)
        return response

    return guard


def failed(request: web.Request, exc: BaseException) -> web.Response:
    """Called in the ``except`` clause around a route's work: the error's response in the
    face's envelope; the end of the request recorded. What is no error of the request
    (cancellation, a client gone, a redirect) is raised again."""
    response: web.Response | None = None
    status, cancelled = 500, False  # what a request that ends without a response counts as
    try:
        if isinstance(exc, ProxyError):
            # One line per failed request with the reason (never a key: messages hold none).
            # Cut short: some messages quote a bot's answer (the user's content).
            log.log(logging.WARNING if exc.status >= 500 else logging.INFO,
                    "%s %s -> %d %s: %s", request.method, request.path, exc.status,
                    exc.code or exc.type, exc.message if len(exc.message) <= _LOGGED
                    else exc.message[:_LOGGED] + "…")
            response = error_response(exc, request)
        elif isinstance(exc, web.HTTPException):
            if exc.status < 400:
                status = exc.status
                raise exc
            response = error_response(_from_http_exception(request, exc), request)
        elif isinstance(exc, asyncio.CancelledError):
            cancelled = True  # the client left
            raise exc
        elif isinstance(exc, ConnectionResetError) or not isinstance(exc, Exception):
            raise exc
        else:
            log.error("Unhandled error on %s %s", request.method, request.path,
                      exc_info=exc)
            response = error_response(InternalError("The server had an internal error."),
                                      request)
    finally:
        request_ended(request, status if response is None else response.status, cancelled)
    return response


async def not_found(request: web.Request) -> web.StreamResponse:
    """Every path no route has (counted in the metrics, as face ``none``)."""
    request.app[TEAM].observe(request, "none")
    raise _UnknownPath(f"Unknown path: {request.method} {request.path}")


async def method_not_allowed(request: web.Request) -> web.StreamResponse:
    """A known path asked with a method it does not answer (counted in the metrics, as face
    ``none``)."""
    request.app[TEAM].observe(request, "none")
    resource = request.match_info.route.resource
    allowed = sorted({r.method for r in resource} - {"*"}) if resource is not None else []
    raise MethodNotAllowed(
        f"Method {request.method} is not allowed on {request.path}"
        + (f"; use {', '.join(allowed)}." if allowed else "."),
        headers={"Allow": ", ".join(allowed)} if allowed else None)


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> ProxyError:
    if exc.status == 404:
        return NotFound(f"Unknown path: {request.method} {request.path}")
    if exc.status == 413:
        limit = request.app[keys.SETTINGS].max_request_size
        return RequestTooLarge(
            f"The request body is larger than MAX_REQUEST_SIZE ({limit} bytes).")
    err = ProxyError(exc.reason or "Request failed")
    err.status = exc.status  # type: ignore[misc]
    err.type = "invalid_request_error" if exc.status < 500 else "server_error"  # type: ignore[misc]
    err.code = None  # type: ignore[misc]
    return err
