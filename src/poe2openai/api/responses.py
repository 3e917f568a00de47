"""The Responses face: ``POST /v1/responses``, ``GET``/``DELETE /v1/responses/{id}``.

Parsing and encoding are in ``translate/responses_*.py``; the answer comes from the
shared loop (:func:`.answer.answer`). Errors use the OpenAI envelope, as on Chat.
"""

from __future__ import annotations

import dataclasses
import logging

from aiohttp import web

from .. import keys
from ..cluster.responses import SharedResponses
from ..errors import NotFound
from ..jsonlib import dumps
from ..team.gate import OBSERVATION, Access
from ..translate.conversation import Conversation
from ..translate.responses_encode import ResponseSettings, ResponsesExchange
from ..translate.responses_request import output_turns, parse_responses_request
from .answer import face_handler
from .body import read_json
from .credentials import authorize
from .response_store import ResponseStore, StoredResponse

__all__ = ["create_response", "delete_response", "get_response"]

log = logging.getLogger(__name__)


def _not_found(rid: str, param: str | None = None) -> NotFound:
    return NotFound(f"No stored response with id '{rid}' (it may have expired, been "
                    "deleted, created with store=false, or by another API key).", param=param)


def _continue(conv: Conversation, previous: StoredResponse) -> None:
    """Put the stored conversation before this request's turns."""
    shift = len(previous.turns)
    conv.turns[:0] = [dataclasses.replace(t, calls=list(t.calls)) for t in previous.turns]
    conv.media = [dataclasses.replace(m, message=m.message + shift) for m in conv.media]
    conv.attachments = dict(previous.attachments)


async def _open(request: web.Request) -> tuple[Access, Conversation, ResponsesExchange]:
    access = authorize(request, "responses")
    parsed = parse_responses_request(await read_json(request))
    conv = parsed.conv
    store = request.app[keys.RESPONSES]
    if parsed.previous_response_id is not None:
        previous = await store.get(access.owner, parsed.previous_response_id)
        if previous is None:
            request[OBSERVATION].model = conv.model  # recorded with the model it asked for
            raise _not_found(parsed.previous_response_id, "previous_response_id")
        _continue(conv, previous)
    # Stored (with ``store``) by ``before_end``, once the answer is complete.
    return access, conv, _StoringExchange(conv, parsed.settings, store, access.owner)


create_response = face_handler(_open)


class _StoringExchange(ResponsesExchange):
    """Stores the finished response (with ``store``) once, before the client can see its end,
    so that continuing it at once, on this instance or another, finds it."""

    __slots__ = ("_owner", "_store", "_stored")

    def __init__(self, conv: Conversation, settings: ResponseSettings,
                 store: ResponseStore | SharedResponses, owner: str) -> None:
        super().__init__(conv, settings)
        self._store = store
        self._owner = owner
        self._stored = not settings.store

    async def before_end(self) -> None:
        done = self.response
        if self._stored or done is None or done["status"] in ("failed", "in_progress"):
            return
        self._stored = True
        await self._store.put(self._owner, done, self.conv.turns + output_turns(done),
                              self.conv.attachments)


async def get_response(request: web.Request) -> web.Response:
    owner = authorize(request, "responses").owner
    rid = request.match_info["response_id"]
    entry = await request.app[keys.RESPONSES].get(owner, rid)
    if entry is None:
        raise _not_found(rid)
    return web.Response(body=dumps(entry.response), content_type="application/json")


async def delete_response(request: web.Request) -> web.Response:
    owner = authorize(request, "responses").owner
    rid = request.match_info["response_id"]
    if not await request.app[keys.RESPONSES].delete(owner, rid):
        raise _not_found(rid)
    return web.Response(body=dumps({"id": rid, "object": "response", "deleted": True}),
                        content_type="application/json")
