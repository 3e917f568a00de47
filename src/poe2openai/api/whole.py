"""Answers read whole: :func:`collect` (one Poe query read to its end, also for the Images
API), a face's non-streamed answer (:func:`answer_whole`), and what both share with the
streamed answer in :mod:`.answer`: the timed Poe query and the structured-output checks."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from .. import keys
from ..errors import ProxyError, StructuredOutputFailed, UpstreamError
from ..jsonlib import dumps
from ..modeloptions import ResolvedModel
from ..poe.client import PoeClient, PoeStream
from ..team.gate import OBSERVATION, Observation
from ..translate.conversation import Conversation, Usage
from ..translate.items import Accumulator
from ..translate.response import ResponseTranslator, Stage
from ..translate.stages import make_stages
from ..translate.structured import JsonStage, describe, extract, final_items, problem, repair_query
from ..translate.usage import add_usage
from .counting import count_prompt, usage_of
from .exchange import Exchange
from .prepare import Prepared, overhead_ms
from .streams import StreamState

__all__ = ["PoeQuery", "answer_whole", "collect", "holding", "unfixable"]

log = logging.getLogger(__name__)

#: How much of an unusable answer an error quotes.
_QUOTED = 20000


def unfixable(conv: Conversation, answer_text: str, why: str) -> ProxyError:
    """The error when structured output did not validate after its repair rounds."""
    what = describe(conv.output_format) if conv.output_format is not None else "JSON format"
    return StructuredOutputFailed(
        f"The bot's answer does not match the requested {what} "
        f"after {conv.structured_repairs} repair round(s): {why}. Its last answer was: "
        f"{answer_text[:_QUOTED]}")


def holding(stages: list[Any]) -> JsonStage | None:
    """The structured-output stage, when it holds answer text (nothing went out yet)."""
    last = stages[-1] if stages else None
    return last if isinstance(last, JsonStage) and last.parts else None


def _finish_reason(translator: ResponseTranslator, acc: Accumulator) -> str:
    return "tool_calls" if acc.tool_calls else translator.finish_reason


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
    async with PoeQuery(poe, model, query, api_key, obs) as upstream:
        state = StreamState(None, upstream, 0.0)
        streams.add(state)
        try:
            while not translator.done:
                events = await upstream.read()
                if events is None:
                    acc.add(translator.finish())  # a held replacement or file links may remain
                    if not acc.content and not acc.tool_calls and not acc.reasoning \
                            and not acc.files and holding(stages) is None:
                        raise UpstreamError("Poe closed the connection without answering.")
                    log.warning("Poe's answer from %s ended without a 'done' event", model.bot)
                    break
                acc.add(translator.feed(events))
        finally:
            streams.discard(state)
    if acc.error is not None:
        raise acc.error
    counted, held = acc, holding(stages)
    if held is not None:  # structured output: the answer, held back, counts all the same
        counted = Accumulator()
        counted.content, counted.reasoning = [held.text], acc.reasoning
    usage = usage_of(count_prompt(query), translator.upstream_usage, counted)
    if not isinstance(usage, Usage):
        usage = await usage
    return acc, _finish_reason(translator, acc), usage


async def answer_whole(request: web.Request, exchange: Exchange, conv: Conversation,
                       prep: Prepared, api_key: str, obs: Observation) -> web.Response:
    """A face's answer in one piece (``"stream": false``)."""
    model, headers, query = prep.model, prep.headers, prep.take_query()
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
            raise unfixable(conv, stage.text, why)
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
    response = web.Response(body=body, content_type="application/json", headers=headers)
    before_end = getattr(exchange, "before_end", None)
    if before_end is not None:
        await before_end()
    return response


class PoeQuery:
    """One Poe query, used as ``async with … as upstream``; the time spent waiting on Poe
    (for its headers, then on every network read: :attr:`PoeStream.waited`) is added to the
    request's observation at the end. Not an ``asynccontextmanager``: that would cost every
    open stream a generator frame, the manager and the loop's weak reference to the
    generator (about 0.5 KB)."""

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
        upstream.stop_waiting()
        if self._obs is not None:
            self._obs.add_upstream(upstream.waited)
            upstream.waited = 0.0
        await upstream.__aexit__(*exc_info)
