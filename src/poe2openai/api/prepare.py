"""Everything before the Poe query, the same for every face: admission (the key's models,
the balance guard, the key's limits), the model, the rate limit, the bot parameters (checked
against the bot's published schema), the uploads and the query."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .. import keys
from ..modeloptions import ResolvedModel
from ..team.gate import OBSERVATION, Access, Observation
from ..translate.conversation import Conversation
from ..translate.headers import name_list
from ..translate.params import attach_parameters, resolve_parameters
from ..translate.query import build_poe_query
from ..translate.structured import native_format
from .accesslog import MODEL

__all__ = ["Prepared", "admitted", "bot_schema", "overhead_ms", "prepare"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Prepared:
    """A request made ready for Poe: the bot, its query, and the answer's extra headers."""

    model: ResolvedModel
    query: dict[str, Any] | None
    headers: dict[str, str]

    def take_query(self) -> dict[str, Any]:
        """The query, handed over once (this object keeps no reference to it)."""
        query, self.query = self.query, None
        assert query is not None, "the query is taken once"
        return query


def admitted(request: web.Request, conv: Conversation, access: Access) -> _Admitted:
    """The checks every face's request passes before any work: the key may use the model
    (403), the server's point balance and the key's limits (402, 429; the concurrency slot is
    held until the answer ends). ``async with`` gives the request's observation (metrics,
    usage log)."""
    obs = request[OBSERVATION]
    obs.model = conv.model
    access.check_model(conv.model)
    return _Admitted(obs, obs.team.admit(access))


class _Admitted:
    """:func:`admitted`'s context manager. A plain class rather than an async generator: it
    stays open for the whole answer, and a generator would cost every open stream a frame
    and the event loop's weak reference to it."""

    __slots__ = ("_admit", "_obs")

    def __init__(self, obs: Observation, admit: AbstractAsyncContextManager[None]) -> None:
        self._obs = obs
        self._admit = admit

    async def __aenter__(self) -> Observation:
        await self._admit.__aenter__()
        return self._obs

    async def __aexit__(self, *exc: Any) -> None:
        await self._admit.__aexit__(*exc)


async def prepare(request: web.Request, conv: Conversation, access: Access) -> Prepared:
    """Everything before the Poe query, the same for every face: the model (and its name in
    the access log), the rate limit, the bot parameters (400s before uploads), the uploads
    and the query."""
    app = request.app
    model = app[keys.REGISTRY].current.resolve(conv.model)
    request[MODEL] = conv.model if conv.model == model.bot else f"{conv.model}->{model.bot}"
    await app[keys.RATE_LIMITER].wait(access.owner)
    parameters = await _bot_parameters(app, conv, model)  # 400s before uploads
    if conv.media:
        uploaded = await app[keys.UPLOADER].resolve(conv.media, access.poe_key)
        for turn, attachments in uploaded.items():
            conv.attachments.setdefault(turn, []).extend(attachments)
    query = build_poe_query(conv, model)
    attach_parameters(query["query"], parameters)
    headers: dict[str, str] = {}
    if conv.output_format is not None:
        headers["x-structured-output"] = "native" if conv.native_format else "instructed"
    if conv.dropped:
        headers["x-dropped-params"] = name_list(conv.dropped)
    return Prepared(model, query, headers)


#: How long a request waits for Poe's model list when it needs a bot's parameter schema.
_SCHEMA_WAIT = 3.0

async def _bot_parameters(app: web.Application, conv: Conversation,
                          model: ResolvedModel) -> dict[str, Any]:
    """The Poe bot parameters: models.yaml defaults, then the request's, checked against
    the bot's published schema when there is one. Consumed names leave ``conv.dropped``.
    A structured-output request uses the bot's own ``response_format`` parameter when it
    publishes one."""
    defaults = model.options.parameters
    if not conv.param_candidates and conv.output_format is None:
        return dict(defaults)
    schema = await bot_schema(app, model.bot)
    parameters = dict(defaults)
    if conv.param_candidates:
        plan = resolve_parameters(conv.param_candidates, schema, defaults, bot=model.bot)
        tops = {c.top for c in conv.param_candidates}
        conv.dropped = sorted({d for d in conv.dropped if d not in tops} | set(plan.dropped))
        parameters = plan.parameters
    if conv.output_format is not None and conv.output_format.tool is None \
            and schema is not None and any(p.get("name") == "response_format" for p in schema):
        # The bot takes OpenAI's response_format itself: no instruction in the prompt.
        parameters["response_format"] = native_format(conv.output_format)
        conv.native_format = True
    return parameters


async def bot_schema(app: web.Application, bot: str) -> list[dict[str, Any]] | None:
    """The bot's parameter list from Poe's model list; ``None`` when unknown.

    The list is fetched if it is not cached (at most ``_SCHEMA_WAIT`` seconds; the
    fetch goes on in the background for later requests); failures mean "unknown".
    """
    catalog = app[keys.CATALOG]
    fetch = asyncio.ensure_future(
        catalog.get(app[keys.REGISTRY].current.api_token))
    fetch.add_done_callback(_ignore_result)
    try:
        async with asyncio.timeout(_SCHEMA_WAIT):
            await asyncio.shield(fetch)
    except Exception as exc:  # best effort: without the list, parameters go unchecked
        log.info("Bot parameters of %s are not checked: Poe's model list is unavailable (%s)",
                 bot, getattr(exc, "message", None) or type(exc).__name__)
    entry = catalog.find(bot)
    params = entry.get("parameters") if entry is not None else None
    return [p for p in params if isinstance(p, dict)] if isinstance(params, list) else None


def _ignore_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so an unawaited failure is not reported as lost


def overhead_ms(obs: Observation) -> str:
    """The proxy's own time so far: since the request arrived, less the time spent waiting
    on Poe (for a stream: until its headers go out)."""
    return f"{max(0.0, time.perf_counter() - obs.start - (obs.upstream or 0.0)) * 1000:.2f}"


