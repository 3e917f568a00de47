"""Reading a request's JSON body: a deadline, a shared memory budget, parsing off the loop.

Receiving and parsing are kept apart on purpose. Receiving waits on the client, so it
holds nothing that other requests need: it has a deadline (``BODY_READ_TIMEOUT``, then
408) and reserves room in a budget shared by every body being received, as the bytes
arrive (a slow sender holds only the bytes it has really sent). Parsing a body over
``LARGE_BODY`` runs in a worker thread, a few at a time (``keys.LARGE_BODIES``); that
wait is on the CPU only, never on a client.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from aiohttp import StreamReader, hdrs, web

from .. import keys
from ..errors import InvalidRequest, ProxyError, RequestTooLarge
from ..jsonlib import JSONDecodeError, loads
from ..settings import Settings
from .budget import Share

__all__ = ["LARGE_BODY", "BodyTimeout", "ServerBusy", "read_json"]

#: Bodies larger than this are parsed in a worker thread, a few at a time.
LARGE_BODY = 1024 * 1024


class BodyTimeout(ProxyError):
    """The client did not send its whole body within ``BODY_READ_TIMEOUT``."""

    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class ServerBusy(ProxyError):
    """Too many body bytes are being received at once; the client should retry shortly."""

    status = 503
    type = "server_error"
    code = "server_busy"


async def read_json(request: web.Request) -> Any:
    """The request body, parsed; every failure is a :class:`ProxyError`."""
    config = request.app  # the API's routes are the main app's
    with config[keys.BODY_BUDGET].hold() as share:
        raw = await _receive(request, config[keys.SETTINGS], share)
        if len(raw) <= LARGE_BODY:
            return _parse_json(raw)
        async with config[keys.LARGE_BODIES]:
            return await asyncio.to_thread(_parse_json, raw)


async def _receive(request: web.Request, settings: Settings,
                   share: Share) -> bytes | bytearray:
    limit = settings.max_request_size
    size = request.content_length
    if size is not None and size > limit:
        raise _too_large(limit)
    payload = request.content
    try:
        if payload.is_eof():  # all of it has arrived (most requests): no wait, no deadline
            raw = payload.read_nowait()  # all at once (joined only if it came in pieces)
            if len(raw) > limit:
                raise _too_large(limit)
            if not share.take(len(raw)):
                raise _busy()
            return raw
        body = bytearray()
        async with asyncio.timeout(settings.body_read_timeout):
            await _take(payload, body, limit, share)
    except TimeoutError:
        raise BodyTimeout(
            f"The request body was not received within BODY_READ_TIMEOUT "
            f"({settings.body_read_timeout:g} s).", headers={"Connection": "close"}) from None
    except web.RequestPayloadError:
        raise _undecodable(request) from None
    return body


async def _take(payload: StreamReader, body: bytearray, limit: int, share: Share) -> None:
    while chunk := await payload.readany():
        if len(body) + len(chunk) > limit:
            raise _too_large(limit)
        if not share.take(len(chunk)):
            raise _busy()
        body += chunk


def _busy() -> ServerBusy:
    return ServerBusy("The server is receiving too many large request bodies at once; "
                      "retry shortly.", headers={"retry-after": "1"})


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body is larger than MAX_REQUEST_SIZE ({limit} bytes).")


def _undecodable(request: web.Request) -> InvalidRequest:
    # The stream is broken for good. Marking it ended keeps aiohttp from reading on after
    # the answer (that read would raise again and log a traceback); the client is told to
    # close the connection.
    request.content.feed_eof()
    encoding = request.headers.get(hdrs.CONTENT_ENCODING)
    message = (f"The request body is not valid {encoding!r} data, as its Content-Encoding "
               "header says; send it compressed that way, or without the header."
               if encoding else "The request body could not be read: it ended early, or its "
               "chunked framing is malformed.")
    return InvalidRequest(message, headers={"Connection": "close"})


def _parse_json(raw: bytes | bytearray) -> Any:
    if not raw or raw.isspace():
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        return loads(cast(bytes, raw))  # orjson and json both read a bytearray as is
    except JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
