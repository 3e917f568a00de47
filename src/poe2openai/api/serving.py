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
    InvalidRequest,
    ProxyError,
    UpstreamError,
    UpstreamUnavailable,
)
from ..jsonlib import JSONDecodeError, dumps, loads
from ..registry import ResolvedModel
from ..translate.chunks import DONE, ChunkEncoder, completion_id, make_completion, now
from ..translate.request import ChatRequest, build_poe_query, parse_chat_request
from ..translate.response import CONTENT, ERROR, REASONING, Accumulator, Out, ResponseTranslator
from ..translate.usage import count_tokens, make_usage, prompt_tokens
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


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        return loads(raw)
    except JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None


async def chat_completions(request: web.Request) -> web.StreamResponse:
    api_key = bearer_key(request)
    req = parse_chat_request(await read_json(request))
    model = request.app[keys.REGISTRY].current.resolve(req.model)
    query = build_poe_query(req, model)
    headers: dict[str, str] = {}
    if req.dropped:
        headers["x-dropped-params"] = ", ".join(req.dropped)
    if req.stream:
        return await _stream(request, req, model, query, api_key, headers)
    return await _complete(request, req, model, query, api_key, headers)


def _usage(req: ChatRequest, query: dict[str, Any], content: list[str],
           reasoning: list[str]) -> dict[str, Any]:
    prompt = prompt_tokens(m["content"] for m in query["query"])
    thinking = count_tokens("".join(reasoning))
    return make_usage(prompt, count_tokens("".join(content)) + thinking, thinking)


async def _complete(request: web.Request, req: ChatRequest, model: ResolvedModel,
                    query: dict[str, Any], api_key: str, headers: dict[str, str]) -> web.Response:
    poe = request.app[keys.POE]
    translator = ResponseTranslator(model.options, streaming=False)
    acc = Accumulator()
    async with poe.query(model.bot, query, api_key) as upstream:
        while not translator.done:
            events = await upstream.read()
            if events is None:
                if not acc.content and not acc.tool_calls and not acc.reasoning:
                    raise UpstreamError("Poe closed the connection without answering.")
                log.warning("Poe's answer from %s ended without a 'done' event", model.bot)
                acc.add(translator.finish())
                break
            acc.add(translator.feed(events))
    if acc.error is not None:
        raise acc.error
    finish = "tool_calls" if acc.tool_calls else translator.finish_reason
    body = make_completion(
        id=completion_id(), created=now(), model=req.model, acc=acc, finish_reason=finish,
        usage=_usage(req, query, acc.content, acc.reasoning),
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
    translator = ResponseTranslator(model.options, streaming=True)
    counted: list[str] | None = [] if req.include_usage else None
    reasoning: list[str] | None = [] if req.include_usage else None

    async with poe.query(model.bot, query, api_key) as upstream:
        # Hold the HTTP status back until Poe says something (or FIRST_BYTE_WAIT passes),
        # so that an error Poe reports first can still become a real HTTP error.
        pending: list[Out] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.first_byte_wait):
                while not pending and not translator.done:
                    events = await upstream.read()
                    if events is None:
                        pending = translator.finish()
                        if not pending:
                            raise UpstreamError("Poe closed the connection without answering.")
                        break
                    pending = translator.feed(events)
        if pending and pending[0][0] == ERROR:
            raise pending[0][1]

        resp = SSEResponse(headers={**SSE_HEADERS, **headers})
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        state = StreamState(resp, upstream, loop.time())
        streams.add(state)
        try:
            out, head = pending, enc.role()
            while True:
                data = head + enc.encode(out) if out else head
                head = b""
                if out and counted is not None and reasoning is not None:
                    _collect(out, counted, reasoning)
                if translator.done:
                    if out and out[-1][0] == ERROR:
                        data += DONE
                    else:
                        data += enc.finish(translator.finish_reason)
                        if counted is not None and reasoning is not None:
                            data += enc.usage(_usage(req, query, counted, reasoning))
                        data += DONE
                    break
                if data:
                    await resp.write(data)
                    state.last_write = loop.time()
                try:
                    events = await upstream.read()
                except ProxyError as err:
                    data = _end_with_error(enc, state, err)
                    break
                if events is not None:
                    out = translator.feed(events)
                elif state.closing:
                    data = _end_with_error(enc, state, None)
                    break
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


def _collect(items: list[Out], content: list[str], reasoning: list[str]) -> None:
    for item in items:
        if item[0] == CONTENT:
            content.append(item[1])
        elif item[0] == REASONING:
            reasoning.append(item[1])


def _end_with_error(enc: ChunkEncoder, state: StreamState, err: ProxyError | None) -> bytes:
    if state.closing or err is None:
        err = UpstreamUnavailable("The server is shutting down; please retry.")
    return enc.error(err) + DONE
