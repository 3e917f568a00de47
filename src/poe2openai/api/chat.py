"""The Chat Completions face: ``POST /v1/chat/completions``.

Parsing is ``translate/request.py``, encoding ``translate/chunks.py``; the answer comes
from the shared loop (:func:`.answer.answer`).
"""

from __future__ import annotations

from aiohttp import web

from ..translate.chunks import ChatExchange
from ..translate.request import parse_chat_request
from .answer import answer
from .body import read_json
from .credentials import authorize

__all__ = ["chat_completions"]


async def chat_completions(request: web.Request) -> web.StreamResponse:
    access = authorize(request, "chat")
    conv = parse_chat_request(await read_json(request))
    return await answer(request, ChatExchange(conv), conv, access)
