"""The Anthropic Messages face: ``POST /v1/messages``, ``POST /v1/messages/count_tokens``,
and the Anthropic shape of the model list.

Parsing and encoding are in ``translate/messages_*.py``; the answer comes from the
shared loop (:func:`.answer.answer`). Errors use Anthropic's envelope
(:func:`.guard.is_anthropic` tells which requests are this face's).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .. import keys
from ..jsonlib import dumps
from ..team.gate import Access
from ..tokenizer import TOKENIZER
from ..translate.conversation import Conversation
from ..translate.messages_encode import MessagesExchange
from ..translate.messages_request import parse_messages_request
from ..translate.query import build_poe_query
from ..translate.usage import query_prompt_tokens
from .answer import face_handler
from .body import read_json
from .credentials import authorize

__all__ = ["anthropic_models", "count_tokens", "create_message"]

async def _open(request: web.Request) -> tuple[Access, Conversation, MessagesExchange]:
    access = authorize(request, "messages")
    conv = parse_messages_request(await read_json(request))
    return access, conv, MessagesExchange(conv)


create_message = face_handler(_open)


async def count_tokens(request: web.Request) -> web.Response:
    """Counted locally with the tokenizer ``usage`` uses; never a Poe query."""
    access = authorize(request, "messages")
    body = await read_json(request)
    if isinstance(body, dict):
        body = {**body, "max_tokens": 1}  # not part of a count_tokens request
    conv = parse_messages_request(body)
    access.check_model(conv.model)
    model = request.app[keys.REGISTRY].current.resolve(conv.model)
    query = build_poe_query(conv, model)
    if not TOKENIZER.loaded:
        await asyncio.get_running_loop().run_in_executor(None, TOKENIZER.load)
    tokens = query_prompt_tokens(query, TOKENIZER.count)
    return web.Response(body=dumps({"input_tokens": tokens}), content_type="application/json")


def anthropic_models(models: list[dict[str, Any]]) -> dict[str, Any]:
    """Anthropic's ``/v1/models`` shape, from our OpenAI-shaped entries."""
    data = [{"type": "model", "id": m["id"], "display_name": m.get("display_name") or m["id"],
             "created_at": datetime.fromtimestamp(m.get("created") or 0, UTC)
             .strftime("%Y-%m-%dT%H:%M:%SZ")} for m in models]
    return {"data": data, "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}
