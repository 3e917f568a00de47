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
from ..errors import ProxyError, StructuredOutputFailed, UpstreamError
from ..jsonlib import dumps
from ..modeloptions import ResolvedModel
from ..poe.client import PoeClient, PoeStream
from ..team.gate import ARRIVED, OBSERVATION, Observation, request_ended
from ..translate.conversation import Conversation, Usage
from ..translate.items import ERROR, Accumulator, Out
from ..translate.response import ResponseTranslator, Stage
from ..translate.stages import make_stages
from ..translate.structured import (
    JsonStage,
    describe,
    extract,
    final_items,
    problem,
    repair_query,
)
from ..translate.usage import add_usage
from .counting import collector, count_prompt, usage_of
from .exchange import Exchange, Opener
from .guard import failed
from .prepare import Prepared, admitted, overhead_ms, prepare
from .streams import StreamState

__all__ = ["collect", "face_handler"]

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
    """The route handler of a face: the request opened by ``open_request``, then answered.
    One coroutine for both (a face's own handler awaiting the loop would be one more frame
    that every open stream holds, and resumes on each of its network reads)."""
    return functools.partial(_answer, open_request=open_request)


async def _answer(request: web.Request, *, open_request: Opener) -> web.StreamResponse:
    """Guarded inline: :func:`.guard.guarded` would be one more frame per open stream.
    Errors before a response starts become the face's error response."""
    request[ARRIVED] = time.perf_counter()
    try:
        access, conv, exchange = await open_request(request)
        async with admitted(request, conv, access) as obs:
            prep = await prepare(request, conv, access)
            try:
                if conv.stream:
                    resp = await _stream(request, exchange, conv, prep, access.poe_key, obs)
                else:
                    resp = await _complete(request, exchange, conv, prep.model,
                                           prep.take_query(), access.poe_key, prep.headers, obs)
                    before_end = getattr(exchange, "before_end", None)
                    if before_end is not None:
                        await before_end()
            except asyncio.CancelledError:
                log.info("Client left before the answer from %s was complete; Poe's answer "
                         "closed", prep.model.bot)
                raise
    except BaseException as exc:
        return failed(request, exc)
    request_ended(request, resp.status)
    return resp


def _finish_reason(translator: ResponseTranslator, acc: Accumulator | None) -> str:
    if acc is not None and acc.tool_calls:
        return "tool_calls"
    return translator.finish_reason


def _unfixable(conv: Conversation, answer_text: str, why: str) -> ProxyError:
    what = describe(conv.output_format) if conv.output_format is not None else "JSON format"
    return StructuredOutputFailed(
        f"The bot's answer does not match the requested {what} "
        f"after {conv.structured_repairs} repair round(s): {why}. Its last answer was: "
        f"{answer_text[:_QUOTED]}")


def _holding(stages: list[Any]) -> JsonStage | None:
    """The structured-output stage, when it holds answer text (nothing went out yet)."""
    last = stages[-1] if stages else None
    return last if isinstance(last, JsonStage) and last.parts else None


#: How much of an unusable answer an error quotes.
_QUOTED = 20000


async def collect(request: web.Request, conv: Conversation, model: ResolvedModel,
                  query: dict[str, Any], api_key: str, stages: list[Stage] | None = None
                  ) -> tuple[Accumulator, str, Usage]:
    """One Poe query read to its end, not streamed: the collected answer, its neutral finish
    reason and its usage. Poe's error is raised as a :class:`ProxyError`. The query is
    registered in ``app[keys.STREAMS]`` (the shutdown drain ends it); cancelling the caller
    closes Poe's answer."""
    poe = request.app[keys.POE]
    if stages is None:
        stages = make_stages(conv, model)
    translator = ResponseTranslator(streaming=False, stages=stages)
    acc = Accumulator()
    streams = request.app[keys.STREAMS]
    obs = request.get(OBSERVATION)
    async with _query(poe, model, query, api_key, obs) as upstream:
        state = StreamState(None, upstream, 0.0)
        streams.add(state)
        try:
            while not translator.done:
                events = await upstream.read()
                if events is None:
                    acc.add(translator.finish())  # a held replacement or file links may remain
                    if not acc.content and not acc.tool_calls and not acc.reasoning \
                            and not acc.files and _holding(stages) is None:
                        raise UpstreamError("Poe closed the connection without answering.")
                    log.warning("Poe's answer from %s ended without a 'done' event", model.bot)
                    break
                acc.add(translator.feed(events))
        finally:
            streams.discard(state)
    if acc.error is not None:
        raise acc.error
    counted, held = acc, _holding(stages)
    if held is not None:  # structured output: the answer, held back, counts all the same
        counted = Accumulator()
        counted.content, counted.reasoning = [held.text], acc.reasoning
    usage = await usage_of(count_prompt(query), translator.upstream_usage, counted)
    return acc, _finish_reason(translator, acc), usage


async def _complete(request: web.Request, exchange: Exchange, conv: Conversation,
                    model: ResolvedModel, query: dict[str, Any], api_key: str,
                    headers: dict[str, str], obs: Observation) -> web.Response:
    repairs = request.app[keys.SETTINGS].structured_retries if conv.output_format else 0
    total: Usage | None = None
    while True:  # one Poe query, more only to repair structured output
        stages = make_stages(conv, model)
        acc, reason, usage = await collect(request, conv, model, query, api_key, stages)
        total = add_usage(total, usage)
        if conv.output_format is None or acc.tool_calls:
            break
        stage = stages[-1]
        assert isinstance(stage, JsonStage)
        found = extract(stage.text)
        why = problem(conv.output_format, found)
        if why is None:  # the JSON alone, or a forced tool's call with it as arguments
            acc.content = []
            acc.add(final_items(conv.output_format, found[1]))  # type: ignore[index]
            reason = "tool_calls" if acc.tool_calls else reason
            break
        if repairs <= conv.structured_repairs:
            raise _unfixable(conv, stage.text, why)
        conv.structured_repairs += 1
        log.info("Structured output from %s did not validate (%s); asking it again",
                 model.bot, why)
        query = repair_query(query, stage.text, why)
    if total is not None:
        obs.tokens_in, obs.tokens_out = total.input_tokens, total.output_tokens
    if conv.structured_repairs:
        headers["x-structured-output"] = headers.get("x-structured-output", "") + ", repaired"
    body = dumps(exchange.complete(acc, reason, total))  # type: ignore[arg-type]
    headers["x-proxy-overhead-ms"] = overhead_ms(obs)
    return web.Response(body=body, content_type="application/json", headers=headers)


async def _stream(request: web.Request, exchange: Exchange, conv: Conversation,
                  prep: Prepared, api_key: str, obs: Observation) -> web.StreamResponse:
    model, headers = prep.model, prep.headers
    # An open stream holds nothing of its prompt once the query is sent (a long conversation
    # would stay in memory for the whole answer): the query is kept only for a structured-
    # output repair, the conversation's turns only for an exchange that stores them.
    query: dict[str, Any] | None = prep.take_query()
    if not exchange.keeps_turns:
        conv.let_go()
    app = request.app
    settings = app[keys.SETTINGS]
    streams = app[keys.STREAMS]
    poe = app[keys.POE]
    enc = exchange.stream_encoder()
    loop = asyncio.get_running_loop()
    fmt = conv.output_format
    # A forced tool's arguments are held whole: they go out as the call, not as text.
    buffered = fmt is not None and (settings.structured_stream == "buffer"
                                    or fmt.tool is not None)
    repairs = settings.structured_retries if fmt is not None else 0
    resp: SSEResponse | None = None
    state: StreamState | None = None
    total: Usage | None = None
    head = b""
    try:
        while True:  # one Poe query, more only to repair structured output
            stages = make_stages(conv, model, stream_json=not buffered)
            translator = ResponseTranslator(streaming=True, stages=stages)
            # Only what usage (or structured output) needs is kept: for usage alone, nothing
            # when the encoder keeps the answer anyway, else a tally that counts the answer as
            # it grows (once the tokenizer is loaded).
            collected = collector(enc, structured=fmt is not None)
            assert query is not None
            async with _query(poe, model, query, api_key, obs) as upstream:
                # The prompt is counted while Poe starts its answer, not before the query
                # goes out; after that the stream holds none of it.
                prompt = count_prompt(query) if enc.wants_usage or fmt is not None else 0
                if fmt is None:
                    query = None
                if state is None:
                    state = StreamState(None, upstream, loop.time(), exchange.keepalive)
                    streams.add(state)
                else:  # a structured-output repair: its query ends with the server too
                    state.upstream = upstream
                    if state.closing:
                        upstream.shut_down()
                out: list[Out] = []
                if resp is None:
                    # Hold the HTTP status back until Poe says something (or FIRST_BYTE_WAIT
                    # passes), so that an error Poe reports first can still be an HTTP error.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(settings.first_byte_wait):
                            while not out and not translator.done:
                                events = await upstream.read()
                                if events is None:
                                    out = translator.finish()
                                    if not out and _holding(stages) is None:
                                        raise UpstreamError(
                                            "Poe closed the connection without answering.")
                                    break
                                out = translator.feed(events)
                    if out and out[0][0] == ERROR:
                        raise out[0][1]
                    obs.add_upstream(upstream.waited)
                    upstream.waited = 0.0
                    headers["x-proxy-overhead-ms"] = overhead_ms(obs)
                    resp = SSEResponse()
                    resp.headers.extend(SSE_HEADERS)
                    resp.headers.update(headers)
                    await resp.prepare(request)
                    obs.first_byte()
                    state.response = resp
                    state.last_write = loop.time()
                    head = enc.start()
                while True:
                    failed: ProxyError | None = None
                    if out and out[-1][0] == ERROR:
                        failed = out.pop()[1]
                    data = head + enc.encode(out) if out else head
                    head = b""
                    if out and collected is not None:
                        collected.add(out)
                    if translator.done:
                        break
                    if data:
                        await resp.write(data)
                        state.last_write = loop.time()
                    # Hold nothing of the last batch while waiting: an open stream stays small.
                    data = b""
                    out = events = None  # type: ignore[assignment]
                    try:
                        events = await upstream.read()
                    except ProxyError as err:
                        failed = err
                        log.warning("Stream ended with an error after it started: %s (%s)",
                                    err.message, err.code)
                        break
                    if events is not None:
                        out = translator.feed(events)
                    else:
                        log.warning("Poe's answer from %s ended without a 'done' event",
                                    model.bot)
                        out = translator.finish()
            if failed is not None:
                if translator.done:
                    log.warning("Poe reported an error mid-stream from %s: %s", model.bot,
                                failed.message)
                data += enc.fail(failed)
                break
            if collected is None and enc.wants_usage:
                collected = enc.output()  # the encoder kept the answer (collector())
            usage = (await usage_of(prompt, translator.upstream_usage, collected)
                     if collected is not None else None)
            total = add_usage(total, usage)
            if total is not None:
                obs.tokens_in, obs.tokens_out = total.input_tokens, total.output_tokens
            if fmt is None or (collected is not None and collected.tool_calls):
                data += enc.finish(translator.finish_reason, total if enc.wants_usage else None)
                break
            stage = stages[-1]
            assert isinstance(stage, JsonStage)
            found = extract(stage.text)
            why = problem(fmt, found)
            sent = "".join(stage.emitted)
            if why is None and found is not None and found[1].startswith(sent):
                tail = found[1][len(sent):]
                data += enc.encode(final_items(fmt, tail)) if tail else b""
                reason = "tool_calls" if fmt.tool is not None else translator.finish_reason
                data += enc.finish(reason, total if enc.wants_usage else None)
                break
            if why is None:
                why = "the JSON sent so far is not the answer's valid JSON document"
            if sent or repairs <= conv.structured_repairs:
                # Text already sent cannot be taken back: end with the face's error.
                data += enc.fail(_unfixable(conv, stage.text, why))
                break
            conv.structured_repairs += 1
            log.info("Structured output from %s did not validate (%s); asking it again",
                     model.bot, why)
            assert query is not None
            query = repair_query(query, stage.text, why)
            if data:
                await resp.write(data)
                state.last_write = loop.time()
        streams.discard(state)
        before_end = getattr(exchange, "before_end", None)
        if before_end is not None:
            await before_end()
        await resp.write(data)
        await resp.write_eof()
    except ConnectionResetError:
        obs.cancelled = True
        log.info("Client left a stream from %s; closing Poe's answer", model.bot)
    finally:
        if state is not None:
            streams.discard(state)
    return resp  # type: ignore[return-value]


class _query:  # lower case: used like the function it replaced
    """One Poe query; the time spent waiting on Poe (for its headers, then on every network
    read: :attr:`PoeStream.waited`) is added to the request's observation at the end. Not an
    ``asynccontextmanager``: that would cost every open stream a generator frame, the
    manager and the loop's weak reference to the generator (about 0.5 KB)."""

    __slots__ = ("_obs", "_stream")

    def __init__(self, poe: PoeClient, model: ResolvedModel, query: dict[str, Any],
                 api_key: str, obs: Observation | None) -> None:
        # The query is serialised now and sent on entry; the stream keeps neither.
        self._stream = poe.query(model.bot, query, api_key)
        self._obs = obs

    async def __aenter__(self) -> PoeStream:
        asked = time.perf_counter()
        upstream = await self._stream.__aenter__()
        upstream.waited += time.perf_counter() - asked
        return upstream

    async def __aexit__(self, *exc_info: object) -> None:
        upstream = self._stream
        if self._obs is not None:
            self._obs.add_upstream(upstream.waited)
            upstream.waited = 0.0
        await upstream.__aexit__(*exc_info)
