"""The Chat Completions face: ``POST /v1/chat/completions``.

Parsing is ``translate/request.py``, encoding ``translate/chunks.py``; the answer comes
from the shared loop (:func:`.answer.answer`).
"""

from __future__ import annotations

from aiohttp import web

from ..team.gate import Access
from ..translate.chunks import ChatExchange
from ..translate.conversation import Conversation
from ..translate.request import parse_chat_request
from .answer import face_handler
from .body import read_json
from .credentials import authorize

__all__ = ["chat_completions"]


async def _open(request: web.Request) -> tuple[Access, Conversation, ChatExchange]:
    access = authorize(request, "chat")
    conv = parse_chat_request(await read_json(request))
    return access, conv, ChatExchange(conv)


chat_completions = face_handler(_open)
