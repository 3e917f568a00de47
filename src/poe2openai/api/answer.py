"""The answering loop every API face shares: resolve the model, check the bot parameters,
upload media, query Poe, translate, and write the face's encoding.

A face is a route handler made by :func:`face_handler` from its :data:`Opener`, which
parses the request into a :class:`~..translate.conversation.Conversation` and an
:class:`Exchange` (its per-request encoder). Everything else happens once, here:

* the HTTP status of a stream is held until Poe's first event (up to
  ``FIRST_BYTE_WAIT``), so that an error Poe reports first becomes a real HTTP error
  (in the face's error envelope: :mod:`.guard`); after that, errors end the stream in the
  face's own way (:meth:`StreamEncoder.fail`);
* keep-alives while Poe is silent (:class:`~.streams.ActiveStreams`, with the face's
  bytes), cancellation of Poe's request when the client leaves, the SIGTERM drain;
* usage counting and logging.

Answers not streamed are in :mod:`.whole`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from .. import keys
from ..errors import ProxyError, UpstreamError
from ..poe.client import PoeEvent, PoeStream
from ..settings import Settings
from ..team.gate import ARRIVED, Observation, request_ended
from ..translate.conversation import Conversation, Usage
from ..translate.items import ERROR, Accumulator, Out
from ..translate.response import ResponseTranslator, Stage
from ..translate.stages import make_stages
from ..translate.structured import JsonStage, extract, final_items, problem, repair_query
from ..translate.usage import add_usage
from .counting import collector, count_prompt, usage_of
from .exchange import Opener, StreamEncoder
from .guard import failed
from .prepare import admitted, overhead_ms, prepare
from .streams import StreamState
from .whole import PoeQuery, answer_whole, holding, unfixable

__all__ = ["face_handler"]

log = logging.getLogger(__name__)

#: Copied into every stream's headers (names shared, not made anew per stream).
SSE_HEADERS: CIMultiDict[str] = CIMultiDict({
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
})


class SSEResponse(web.StreamResponse):
    """A stream response that refuses compression (zlib would hold chunks back)."""

    def enable_compression(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("server-sent events are never compressed")


def face_handler(open_request: Opener) -> Callable[[web.Request],
                                                   Awaitable[web.StreamResponse]]:
    """The route handler of a face: the request opened by ``open_request``, then answered."""
    return functools.partial(_answer, open_request=open_request)


async def _answer(request: web.Request, *, open_request: Opener) -> web.StreamResponse:
    """One coroutine from the request's start to a stream's last byte: every open stream
    holds each coroutine of its call chain and resumes each on every network read, so the
    opener, the stream's setup and its end are helpers that return before the answer flows,
    and the route's guard (:func:`.guard.guarded`) is inline. Errors before a response
    starts become the face's error response."""
    request[ARRIVED] = time.perf_counter()
    resp: web.StreamResponse | None = None
    failure: ProxyError | None = None  # a stream's error after it started
    try:
        access, conv, exchange = await open_request(request)
        async with admitted(request, conv, access) as obs:
            prep = await prepare(request, conv, access)
            model = prep.model
            try:
                if not conv.stream:
                    resp = await answer_whole(request, exchange, conv, prep, access.poe_key, obs)
                    request_ended(request, resp.status)
                    return resp
                app = request.app
                settings, streams, poe = app[keys.SETTINGS], app[keys.STREAMS], app[keys.POE]
                headers = prep.headers
                # An open stream holds nothing of its prompt once the query is sent: the
                # query is kept only for a structured-output repair, the conversation's
                # turns only for an exchange that stores them.
                query: dict[str, Any] | None = prep.take_query()
                if not exchange.keeps_turns:
                    conv.let_go()
                enc = exchange.stream_encoder()
                loop = asyncio.get_running_loop()
                fmt = conv.output_format
                # A forced tool's arguments are held whole: they go out as the call.
                buffered = fmt is not None and (settings.structured_stream == "buffer"
                                                or fmt.tool is not None)
                state: StreamState | None = None
                total: Usage | None = None
                stream: SSEResponse | None = None
                # For the usage of an answer that ends early (_count_early_end).
                prompt: int | asyncio.Future[int] | None = None
                translator: ResponseTranslator | None = None
                collected: Accumulator | None = None
                data = b""
                try:
                    while query is not None:  # one Poe query, more to repair structured output
                        stages = make_stages(conv, model, stream_json=not buffered)
                        translator = ResponseTranslator(streaming=True, stages=stages)
                        collected = collector(enc, structured=fmt is not None)
                        async with PoeQuery(poe, model, query, access.poe_key, obs) as upstream:
                            # The prompt is counted while Poe starts its answer; after that
                            # the stream holds none of it.
                            prompt = count_prompt(query)
                            if fmt is None:
                                query = None
                            if state is None:
                                state = StreamState(None, upstream, loop.time(),
                                                    exchange.keepalive)
                                streams.add(state)
                            else:  # a repair: its query ends with the server too
                                state.upstream = upstream
                                if state.closing:
                                    upstream.shut_down()
                            out: list[Out] | None = None
                            if stream is None:
                                out = await _first_events(upstream, translator, stages,
                                                          settings)
                                stream = resp = await _start(request, enc, headers, obs,
                                                             upstream, state)
                                data = enc.start(prompt if isinstance(prompt, int) else None)
                            # The answer flows: per network read, what Poe said, translated.
                            while True:
                                if out:
                                    if out[-1][0] == ERROR:
                                        failure = out.pop()[1]
                                    data += enc.encode(out)
                                    if collected is not None:
                                        collected.add(out)
                                if translator.done or failure is not None:
                                    break
                                if data:
                                    await stream.write(data)
                                    state.last_write = loop.time()
                                # Hold nothing of the last batch while waiting: an open
                                # stream stays small.
                                data, out = b"", None
                                reading = upstream.next_read()
                                events: list[PoeEvent] | None = None
                                try:
                                    if reading is None:
                                        upstream.end()
                                    else:
                                        events = upstream.take(await reading)
                                except ProxyError as err:
                                    failure = err
                                except Exception as exc:  # the network read failed
                                    failure = upstream.broke(exc)
                                if failure is not None:
                                    log.warning("Stream ended with an error after it started: "
                                                "%s (%s)", failure.message, failure.code)
                                    break
                                if events is None:
                                    log.warning("Poe's answer from %s ended without a 'done' "
                                                "event", model.bot)
                                    out = translator.finish()
                                elif events:  # (none: a read without a whole event)
                                    out = translator.feed(events)
                        if failure is not None:
                            if translator.done:
                                log.warning("Poe reported an error mid-stream from %s: %s",
                                            model.bot, failure.message)
                            data += enc.fail(failure)
                            await _count_early_end(obs, total, prompt, translator, collected,
                                                   enc, can_wait=True)
                            break
                        if collected is None:
                            collected = enc.output()  # the encoder kept the answer
                        # Counted whether or not the client asked for usage: the usage
                        # log and the metrics record it.
                        usage = usage_of(prompt, translator.upstream_usage, collected)
                        if not isinstance(usage, Usage):
                            usage = await usage
                        total = _recorded(obs, total, usage)
                        ending, query = _end(enc, conv, settings, model.bot, translator,
                                             stages, collected, total, query)
                        data += ending
                        if query is not None and data:  # asking again: send what is done
                            await stream.write(data)
                            state.last_write = loop.time()
                            data = b""
                    assert state is not None and stream is not None
                    streams.discard(state)
                    before_end = getattr(exchange, "before_end", None)
                    if before_end is not None:
                        await before_end()
                    await stream.write(data)
                    await stream.write_eof()
                except ConnectionResetError:
                    obs.cancelled = True
                    await _count_early_end(obs, total, prompt, translator, collected, enc)
                    log.info("Client left a stream from %s; closing Poe's answer", model.bot)
                    if stream is None:  # gone before the stream started: as if cancelled
                        raise asyncio.CancelledError from None
                except asyncio.CancelledError:
                    await _count_early_end(obs, total, prompt, translator, collected, enc)
                    raise
                finally:
                    if state is not None:
                        streams.discard(state)
            except asyncio.CancelledError:
                log.info("Client left before the answer from %s was complete; Poe's answer "
                         "closed", model.bot)
                raise
    except BaseException as exc:
        return failed(request, exc)
    assert resp is not None
    # A stream that failed after it started is recorded with its error's status (its HTTP
    # status, 200, went out before the error).
    request_ended(request, resp.status if failure is None else failure.status)
    return resp


async def _count_early_end(obs: Observation, total: Usage | None,
                           prompt: int | asyncio.Future[int] | None,
                           translator: ResponseTranslator | None,
                           collected: Accumulator | None, enc: StreamEncoder, *,
                           can_wait: bool = False) -> None:
    """Record the usage of a stream that ended early (an error after it started, the client
    gone, the server shutting down): the prompt was sent and Poe answered part of it. When
    the client is gone (cancelled), only what can be counted at once, never waiting: always
    with the estimate; with o200k, unless the prompt's count is still in its worker."""
    if prompt is None or translator is None:
        return
    usage = usage_of(prompt, translator.upstream_usage,
                     collected if collected is not None else enc.output())
    if not isinstance(usage, Usage):
        if not can_wait:
            usage.close()  # a coroutine, never awaited: the count is skipped
            return
        usage = await usage
    _recorded(obs, total, usage)


def _recorded(obs: Observation, total: Usage | None, usage: Usage) -> Usage:
    """The answer's usage so far (every Poe query of it), recorded for the usage log and the
    metrics."""
    total = add_usage(total, usage)
    assert total is not None
    obs.tokens_in, obs.tokens_out = total.input_tokens, total.output_tokens
    return total


async def _first_events(upstream: PoeStream, translator: ResponseTranslator,
                        stages: list[Stage], settings: Settings) -> list[Out]:
    """Poe's first events, translated. The HTTP status is held back until Poe says
    something (or ``FIRST_BYTE_WAIT`` passes), so that an error Poe reports first can
    still be an HTTP error: raised here."""
    out: list[Out] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(settings.first_byte_wait):
            while not out and not translator.done:
                events = await upstream.read()
                if events is None:
                    out = translator.finish()
                    if not out and holding(stages) is None:
                        raise UpstreamError("Poe closed the connection without answering.")
                    break
                out = translator.feed(events)
    if out and out[0][0] == ERROR:
        raise out[0][1]
    return out


async def _start(request: web.Request, enc: StreamEncoder, headers: dict[str, str],
                 obs: Observation, upstream: PoeStream, state: StreamState) -> SSEResponse:
    """The stream's response, its status and headers sent."""
    obs.add_upstream(upstream.waited)
    upstream.waited = 0.0
    headers["x-proxy-overhead-ms"] = overhead_ms(obs)
    resp = SSEResponse()
    resp.headers.extend(SSE_HEADERS)
    resp.headers.update(headers)
    await resp.prepare(request)
    obs.first_byte()
    state.response = resp
    state.last_write = asyncio.get_running_loop().time()
    return resp


def _end(enc: StreamEncoder, conv: Conversation, settings: Settings, bot: str,
         translator: ResponseTranslator, stages: list[Stage], collected: Accumulator | None,
         total: Usage | None, query: dict[str, Any] | None
         ) -> tuple[bytes, dict[str, Any] | None]:
    """The end of one Poe answer that did not fail: the stream's last bytes, and the query
    to ask again when structured output did not validate and can still be repaired."""
    fmt = conv.output_format
    usage = total if enc.wants_usage else None
    if fmt is None or (collected is not None and collected.tool_calls):
        return enc.finish(translator.finish_reason, usage), None
    stage = stages[-1]
    assert isinstance(stage, JsonStage)
    found = extract(stage.text)
    why = problem(fmt, found)
    sent = "".join(stage.emitted)
    if why is None and found is not None and found[1].startswith(sent):
        tail = found[1][len(sent):]
        data = enc.encode(final_items(fmt, tail)) if tail else b""
        reason = "tool_calls" if fmt.tool is not None else translator.finish_reason
        return data + enc.finish(reason, usage), None
    if why is None:
        why = "the JSON sent so far is not the answer's valid JSON document"
    if sent or settings.structured_retries <= conv.structured_repairs:
        # Text already sent cannot be taken back: end with the face's error.
        return enc.fail(unfixable(conv, stage.text, why)), None
    conv.structured_repairs += 1
    log.info("Structured output from %s did not validate (%s); asking it again",
             bot, why)
    assert query is not None
    return b"", repair_query(query, stage.text, why)
