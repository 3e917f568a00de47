"""The answering loop every API face shares: resolve the model, check the bot parameters,
upload media, query Poe, translate, and write the face's encoding.

A face hands over a parsed :class:`~..translate.conversation.Conversation` and an
:class:`Exchange`, its per-request encoder. Everything else happens once, here:

* the HTTP status of a stream is held until Poe's first event (up to
  ``FIRST_BYTE_WAIT``), so that an error Poe reports first becomes a real HTTP error
  (rendered by the face's error middleware); after that, errors end the stream in the
  face's own way (:meth:`StreamEncoder.fail`);
* keep-alives while Poe is silent (:class:`~.streams.ActiveStreams`, with the face's
  bytes), cancellation of Poe's request when the client leaves, the SIGTERM drain;
* usage counting and logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from aiohttp import web

from .. import keys
from ..errors import ProxyError, UpstreamError, UpstreamUnavailable
from ..jsonlib import dumps
from ..modeloptions import ResolvedModel
from ..poe.client import PoeEvent, PoeStream
from ..tokenizer import TOKENIZER
from ..translate.conversation import Conversation, Usage
from ..translate.headers import name_list
from ..translate.items import ERROR, Accumulator, Out
from ..translate.params import attach_parameters, resolve_parameters
from ..translate.query import build_poe_query
from ..translate.response import ResponseTranslator
from ..translate.stages import make_stages
from ..translate.usage import count_usage, upstream_usage
from .accesslog import MODEL
from .streams import StreamState

__all__ = ["Exchange", "StreamEncoder", "answer"]

log = logging.getLogger(__name__)

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class StreamEncoder(Protocol):
    """One streamed answer in a face's wire format."""

    #: Whether :meth:`finish` needs the usage (counting costs a little).
    wants_usage: bool

    def start(self) -> bytes:
        """What goes out first, with the first items (e.g. the role chunk)."""

    def encode(self, items: list[Out]) -> bytes:
        """A batch of output items (never an error item)."""

    def finish(self, reason: str, usage: Usage | None) -> bytes:
        """The end of a complete answer, terminators included."""

    def fail(self, err: ProxyError) -> bytes:
        """The end of an answer that failed after the stream started."""


class Exchange(Protocol):
    """A face's side of one request: its encoders, keep-alive bytes and response headers."""

    keepalive: bytes

    def stream_encoder(self) -> StreamEncoder: ...

    def complete(self, acc: Accumulator, reason: str, usage: Usage) -> dict[str, Any]:
        """The non-stream answer's JSON body."""


class SSEResponse(web.StreamResponse):
    """A stream response that refuses compression (zlib would hold chunks back)."""

    def enable_compression(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("server-sent events are never compressed")


async def answer(request: web.Request, exchange: Exchange, conv: Conversation,
                 api_key: str) -> web.StreamResponse:
    """Answer ``conv`` for any face. Raises :class:`ProxyError` before a response starts."""
    model = request.app[keys.REGISTRY].current.resolve(conv.model)
    request[MODEL] = conv.model if conv.model == model.bot else f"{conv.model}->{model.bot}"
    await request.app[keys.RATE_LIMITER].wait(api_key)
    try:
        parameters = await _bot_parameters(request.app, conv, model)  # 400s before uploads
        if conv.media:
            conv.attachments = await request.app[keys.UPLOADER].resolve(conv.media, api_key)
        query = build_poe_query(conv, model)
        attach_parameters(query["query"], parameters)
        headers: dict[str, str] = {}
        if conv.dropped:
            headers["x-dropped-params"] = name_list(conv.dropped)
        if conv.stream:
            return await _stream(request, exchange, conv, model, query, api_key, headers)
        return await _complete(request, exchange, conv, model, query, api_key, headers)
    except asyncio.CancelledError:
        log.info("Client left before the answer from %s was complete; Poe's answer closed",
                 model.bot)
        raise


#: How long a request waits for Poe's model list when it needs a bot's parameter schema.
_SCHEMA_WAIT = 3.0
#: Texts longer than this are counted in a worker thread, not on the event loop.
_COUNT_INLINE = 32768


async def _bot_parameters(app: web.Application, conv: Conversation,
                          model: ResolvedModel) -> dict[str, Any]:
    """The Poe bot parameters: models.yaml defaults, then the request's, checked against
    the bot's published schema when there is one. Consumed names leave ``conv.dropped``."""
    defaults = model.options.parameters
    if not conv.param_candidates:
        return dict(defaults)
    schema = await bot_schema(app, model.bot)
    plan = resolve_parameters(conv.param_candidates, schema, defaults, bot=model.bot)
    tops = {c.top for c in conv.param_candidates}
    conv.dropped = sorted({d for d in conv.dropped if d not in tops} | set(plan.dropped))
    return plan.parameters


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


async def _usage(query: dict[str, Any], translator: ResponseTranslator,
                 acc: Accumulator) -> Usage:
    reported = upstream_usage(translator.upstream_usage)
    if reported is not None:
        return reported
    loop = asyncio.get_running_loop()
    if not TOKENIZER.loaded:  # once per process, off the event loop
        await loop.run_in_executor(None, TOKENIZER.load)
    size = sum(len(m.get("content") or "") for m in query["query"]) \
        + sum(map(len, acc.content)) + sum(map(len, acc.reasoning))
    if TOKENIZER.exact and size > _COUNT_INLINE:
        return await loop.run_in_executor(None, count_usage, query, acc, TOKENIZER.count)
    return count_usage(query, acc, TOKENIZER.count)


def _finish_reason(translator: ResponseTranslator, acc: Accumulator | None) -> str:
    if acc is not None and acc.tool_calls:
        return "tool_calls"
    return translator.finish_reason


async def _complete(request: web.Request, exchange: Exchange, conv: Conversation,
                    model: ResolvedModel, query: dict[str, Any], api_key: str,
                    headers: dict[str, str]) -> web.Response:
    poe = request.app[keys.POE]
    translator = ResponseTranslator(streaming=False,
                                    stages=make_stages(conv, model))
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
    body = exchange.complete(acc, _finish_reason(translator, acc),
                             await _usage(query, translator, acc))
    return web.Response(body=dumps(body), content_type="application/json", headers=headers)


async def _stream(request: web.Request, exchange: Exchange, conv: Conversation,
                  model: ResolvedModel, query: dict[str, Any], api_key: str,
                  headers: dict[str, str]) -> web.StreamResponse:
    app = request.app
    settings = app[keys.SETTINGS]
    streams = app[keys.STREAMS]
    poe = app[keys.POE]
    enc = exchange.stream_encoder()
    translator = ResponseTranslator(streaming=True,
                                    stages=make_stages(conv, model))
    collected = Accumulator() if enc.wants_usage else None  # only what usage needs

    async with poe.query(model.bot, query, api_key) as upstream:
        loop = asyncio.get_running_loop()
        state = StreamState(None, upstream, loop.time(), exchange.keepalive)
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
            out, head = pending, enc.start()
            del pending
            while True:
                failed: ProxyError | None = None
                if out and out[-1][0] == ERROR:
                    failed = out.pop()[1]
                data = head + enc.encode(out) if out else head
                head = b""
                if out and collected is not None:
                    collected.add(out)
                if translator.done:
                    if failed is not None:
                        log.warning("Poe reported an error mid-stream from %s: %s", model.bot,
                                    failed.message)
                        data += enc.fail(failed)
                    else:
                        usage = (await _usage(query, translator, collected)
                                 if collected is not None else None)
                        data += enc.finish(translator.finish_reason, usage)
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
                    log.warning("Stream ended with an error after it started: %s (%s)",
                                err.message, err.code)
                    data = enc.fail(err)
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
