"""Chat Completions over Poe: resolve the model, query Poe, translate, write.

Order matters for streams: every check (body, model, Poe's HTTP status, and a
Poe ``error`` event that comes first) happens before the response is prepared,
so those failures get real HTTP statuses. Once prepared, failures become an
error chunk followed by ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from .. import keys
from ..errors import (
    AuthenticationFailed,
    ProxyError,
    UpstreamError,
    UpstreamUnavailable,
)
from ..jsonlib import dumps
from ..poe.client import PoeEvent, PoeStream
from ..registry import ResolvedModel
from ..tokenizer import TOKENIZER
from ..translate.chunks import DONE, ChunkEncoder, completion_id, make_completion, now
from ..translate.headers import name_list
from ..translate.params import attach_parameters, resolve_parameters
from ..translate.request import ChatRequest, build_poe_query, parse_chat_request
from ..translate.response import (
    ERROR,
    Accumulator,
    Out,
    ResponseTranslator,
)
from ..translate.stages import make_stages
from ..translate.usage import make_usage, query_prompt_tokens, upstream_usage
from .accesslog import MODEL
from .body import read_json
from .streams import StreamState

__all__ = ["bearer_key", "chat_completions", "read_json"]

log = logging.getLogger(__name__)

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class SSEResponse(web.StreamResponse):
    """A stream response that refuses compression (zlib would hold chunks back)."""

    def enable_compression(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("server-sent events are never compressed")


def bearer_key(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise AuthenticationFailed(
            "Missing API key: send your Poe API key as 'Authorization: Bearer <key>'."
            if not header else
            "Malformed Authorization header: expected 'Bearer <your Poe API key>'."
        )
    return key


async def chat_completions(request: web.Request) -> web.StreamResponse:
    api_key = bearer_key(request)
    req = parse_chat_request(await read_json(request))
    model = request.app[keys.REGISTRY].current.resolve(req.model)
    request[MODEL] = req.model if req.model == model.bot else f"{req.model}->{model.bot}"
    await request.app[keys.RATE_LIMITER].wait(api_key)
    try:
        return await _answer(request, req, model, api_key)
    except asyncio.CancelledError:
        log.info("Client left before the answer from %s was complete; Poe's answer closed",
                 model.bot)
        raise


async def _answer(request: web.Request, req: ChatRequest, model: ResolvedModel,
                  api_key: str) -> web.StreamResponse:
    parameters = await _bot_parameters(request.app, req, model)  # 400s before any upload
    if req.media:
        req.attachments = await request.app[keys.UPLOADER].resolve(req.media, api_key)
    query = build_poe_query(req, model)
    attach_parameters(query["query"], parameters)
    headers: dict[str, str] = {}
    if req.dropped:
        headers["x-dropped-params"] = name_list(req.dropped)  # client names: always sendable
    if req.stream:
        return await _stream(request, req, model, query, api_key, headers)
    return await _complete(request, req, model, query, api_key, headers)


#: How long a request waits for Poe's model list when it needs a bot's parameter schema.
_SCHEMA_WAIT = 3.0
#: Texts longer than this are counted in a worker thread, not on the event loop.
_COUNT_INLINE = 32768


async def _bot_parameters(app: web.Application, req: ChatRequest,
                          model: ResolvedModel) -> dict[str, Any]:
    """The Poe bot parameters: models.yaml defaults, then the request's, checked against
    the bot's published schema when there is one. Consumed names leave ``req.dropped``."""
    defaults = model.options.parameters
    if not req.param_candidates:
        return dict(defaults)
    schema = await _bot_schema(app, model.bot)
    plan = resolve_parameters(req.param_candidates, schema, defaults, bot=model.bot)
    tops = {c.top for c in req.param_candidates}
    req.dropped = sorted({d for d in req.dropped if d not in tops} | set(plan.dropped))
    return plan.parameters


async def _bot_schema(app: web.Application, bot: str) -> list[dict[str, Any]] | None:
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


async def _usage(query: dict[str, Any], translator: ResponseTranslator,
                 acc: Accumulator) -> dict[str, Any]:
    reported = upstream_usage(translator.upstream_usage)
    if reported is not None:
        return reported
    loop = asyncio.get_running_loop()
    if not TOKENIZER.loaded:  # once per process, off the event loop
        await loop.run_in_executor(None, TOKENIZER.load)

    content, reasoning = acc.content, acc.reasoning
    tools = [t for c in acc.tool_calls for t in (c["function"]["name"], c["function"]["arguments"])]

    def count() -> dict[str, Any]:
        prompt = query_prompt_tokens(query, TOKENIZER.count)
        thinking = TOKENIZER.count("".join(reasoning))
        answer = TOKENIZER.count("".join(content)) + sum(TOKENIZER.count(t) for t in tools)
        return make_usage(prompt, answer + thinking, thinking)

    size = sum(len(m.get("content") or "") for m in query["query"]) \
        + sum(map(len, content)) + sum(map(len, reasoning))
    if TOKENIZER.exact and size > _COUNT_INLINE:
        return await loop.run_in_executor(None, count)
    return count()


async def _complete(request: web.Request, req: ChatRequest, model: ResolvedModel,
                    query: dict[str, Any], api_key: str, headers: dict[str, str]) -> web.Response:
    poe = request.app[keys.POE]
    translator = ResponseTranslator(model.options, streaming=False,
                                    stages=make_stages(req, model))
    acc = Accumulator()
    streams = request.app[keys.STREAMS]
    async with poe.query(model.bot, query, api_key) as upstream:
        state = StreamState(None, upstream, 0.0)
        streams.add(state)
        try:
            while not translator.done:
                events = await _read(upstream, state)
                if events is None:
                    acc.add(translator.finish())  # a held replacement or file links may remain
                    if not acc.content and not acc.tool_calls and not acc.reasoning:
                        raise UpstreamError("Poe closed the connection without answering.")
                    log.warning("Poe's answer from %s ended without a 'done' event", model.bot)
                    break
                acc.add(translator.feed(events))
        finally:
            streams.discard(state)
    if acc.error is not None:
        raise acc.error
    finish = "tool_calls" if acc.tool_calls else translator.finish_reason
    body = make_completion(
        id=completion_id(), created=now(), model=req.model, acc=acc, finish_reason=finish,
        usage=await _usage(query, translator, acc),
    )
    return web.Response(body=dumps(body), content_type="application/json", headers=headers)


async def _stream(request: web.Request, req: ChatRequest, model: ResolvedModel,
                  query: dict[str, Any], api_key: str, headers: dict[str, str]
                  ) -> web.StreamResponse:
    app = request.app
    settings = app[keys.SETTINGS]
    streams = app[keys.STREAMS]
    poe = app[keys.POE]
    enc = ChunkEncoder(completion_id(), now(), req.model)
    translator = ResponseTranslator(model.options, streaming=True,
                                    stages=make_stages(req, model))
    collected = Accumulator() if req.include_usage else None  # only what usage needs

    async with poe.query(model.bot, query, api_key) as upstream:
        loop = asyncio.get_running_loop()
        state = StreamState(None, upstream, loop.time())
        streams.add(state)
        try:
            # Hold the HTTP status back until Poe says something (or FIRST_BYTE_WAIT
            # passes), so that an error Poe reports first can still become an HTTP error.
            pending: list[Out] = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.first_byte_wait):
                    while not pending and not translator.done:
                        events = await _read(upstream, state)
                        if events is None:
                            pending = translator.finish()
                            if not pending:
                                raise UpstreamError(
                                    "Poe closed the connection without answering.")
                            break
                        pending = translator.feed(events)
            if pending and pending[0][0] == ERROR:
                raise pending[0][1]
            resp = SSEResponse(headers={**SSE_HEADERS, **headers})
            await resp.prepare(request)
        except BaseException:
            streams.discard(state)
            raise
        state.response = resp
        state.last_write = loop.time()
        try:
            out, head = pending, enc.role()
            del pending
            while True:
                data = head + enc.encode(out) if out else head
                head = b""
                if out and collected is not None:
                    collected.add(out)
                if translator.done:
                    if out and out[-1][0] == ERROR:
                        log.warning("Poe reported an error mid-stream from %s: %s", model.bot,
                                    out[-1][1].message)
                        data += DONE
                    else:
                        data += enc.finish(translator.finish_reason)
                        if collected is not None:
                            data += enc.usage(await _usage(query, translator, collected))
                        data += DONE
                    break
                if data:
                    await resp.write(data)
                    state.last_write = loop.time()
                # Hold nothing of the last batch while waiting: an open stream stays small.
                data = b""
                out = events = None  # type: ignore[assignment]
                try:
                    events = await _read(upstream, state)
                except ProxyError as err:
                    data = _end_with_error(enc, err)
                    break
                if events is not None:
                    out = translator.feed(events)
                else:
                    log.warning("Poe's answer from %s ended without a 'done' event", model.bot)
                    out = translator.finish()
            streams.discard(state)
            await resp.write(data)
            await resp.write_eof()
        except ConnectionResetError:
            log.info("Client left a stream from %s; closing Poe's answer", model.bot)
        finally:
            streams.discard(state)
    return resp


async def _read(upstream: PoeStream, state: StreamState) -> list[PoeEvent] | None:
    """The next events of Poe's answer; when the server is shutting down, the failure or
    end that this caused is reported as such (503, retryable)."""
    try:
        events = await upstream.read()
    except ProxyError:
        if state.closing:
            raise _shutting_down() from None
        raise
    if events is None and state.closing:
        raise _shutting_down()
    return events


def _shutting_down() -> ProxyError:
    return UpstreamUnavailable("The server is shutting down; please retry.")


def _end_with_error(enc: ChunkEncoder, err: ProxyError) -> bytes:
    log.warning("Stream ended with an error after it started: %s (%s)", err.message, err.code)
    return enc.error(err) + DONE
