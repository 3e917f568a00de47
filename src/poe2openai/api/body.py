"""Reading a request's JSON body."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .. import keys
from ..errors import InvalidRequest
from ..jsonlib import JSONDecodeError, loads

__all__ = ["LARGE_BODY", "read_json"]

#: Bodies larger than this are parsed in a worker thread, a few at a time.
LARGE_BODY = 1024 * 1024


async def read_json(request: web.Request) -> Any:
    size = request.content_length
    if size is not None and size <= LARGE_BODY:
        return _parse_json(await request.read())
    async with request.app[keys.LARGE_BODIES]:
        raw = await request.read()
        if len(raw) <= LARGE_BODY:
            return _parse_json(raw)
        return await asyncio.to_thread(_parse_json, raw)


def _parse_json(raw: bytes) -> Any:
    if not raw or raw.isspace():
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        return loads(raw)
    except JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
