"""A minimal Poe → OpenAI/Anthropic converter: the benchmark's floor for what a proxy must cost.

No features: no model map, tools, reasoning, usage, keep-alives or error mapping. Just an
aiohttp server and client session, Poe's SSE read line by line, one orjson-encoded event out
per Poe ``text`` event, on uvloop — written the plain way, not tuned and not made slow on
purpose. It answers the three API faces the product has: Chat Completions, Responses
(``/v1/responses``, streamed) and Anthropic Messages (``/v1/messages``, streamed), each with
the events its clients need and nothing more.

    POE_BASE_URL=http://127.0.0.1:8090 python bench/reference.py --port 8091
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import uvloop
from aiohttp import web

POE = os.environ.get("POE_BASE_URL", "https://api.poe.com").rstrip("/")
ROLES = {"assistant": "bot", "developer": "system", "tool": "user"}
SESSION = web.AppKey("session", aiohttp.ClientSession)


def chunk(cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None
          ) -> bytes:
    return b"data: " + orjson.dumps({
        "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }) + b"\n\n"


async def poe_events(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    event = ""
    async for line in resp.content:
        line = line.rstrip(b"\r\n")
        if line.startswith(b"event:"):
            event = line[6:].strip().decode()
        elif line.startswith(b"data:"):
            yield event, orjson.loads(line[5:])
        elif not line:
            event = ""


def poe_query(messages: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({
        "version": "1.2", "type": "query", "user_id": "", "conversation_id": "", "message_id": "",
        "query": [{"role": ROLES.get(m["role"], m["role"]),
                   "content": m.get("content") if isinstance(m.get("content"), str) else "",
                   "content_type": "text/markdown"} for m in messages],
    })


def poe_headers(request: web.Request) -> dict[str, str]:
    auth = request.headers.get("Authorization") or "Bearer " + request.headers.get(
        "x-api-key", "")
    return {"Authorization": auth, "Content-Type": "application/json",
            "Accept": "text/event-stream"}


def typed(name: str, data: dict[str, Any]) -> bytes:
    """One typed event (Responses, Messages): ``event:`` and ``data:`` lines."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def responses(request: web.Request) -> web.StreamResponse:
    """``POST /v1/responses``, streamed: the events a Responses client reads."""
    body = await request.json(loads=orjson.loads)
    model, given = body["model"], body["input"]
    messages = ([{"role": "user", "content": given}] if isinstance(given, str) else given)
    rid, mid, created = "resp_" + secrets.token_hex(12), "msg_" + secrets.token_hex(12), \
        int(time.time())
    seq = 0

    def event(name: str, **fields: Any) -> bytes:
        nonlocal seq
        seq += 1
        return typed(name, {"type": name, "sequence_number": seq - 1, **fields})

    def response(status: str, output: list[Any]) -> dict[str, Any]:
        return {"id": rid, "object": "response", "created_at": created, "status": status,
                "model": model, "output": output}

    async with request.app[SESSION].post(f"{POE}/bot/{model}", data=poe_query(messages),
                                         headers=poe_headers(request)) as upstream:
        if upstream.status != 200:
            return web.json_response({"error": {"message": await upstream.text(),
                                                "type": "upstream_error"}}, status=502)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)
        item = {"id": mid, "type": "message", "status": "in_progress", "role": "assistant",
                "content": []}
        await resp.write(event("response.created", response=response("in_progress", []))
                         + event("response.output_item.added", output_index=0, item=item)
                         + event("response.content_part.added", item_id=mid, output_index=0,
                                 content_index=0, part={"type": "output_text", "text": ""}))
        parts: list[str] = []
        async for name, data in poe_events(upstream):
            if name == "text":
                parts.append(data["text"])
                await resp.write(event("response.output_text.delta", item_id=mid,
                                       output_index=0, content_index=0, delta=data["text"]))
            elif name == "error":
                await resp.write(event("response.failed", response=response("failed", [])))
                break
        else:
            text = "".join(parts)
            part = {"type": "output_text", "text": text, "annotations": []}
            done = {**item, "status": "completed", "content": [part]}
            await resp.write(
                event("response.output_text.done", item_id=mid, output_index=0,
                      content_index=0, text=text)
                + event("response.content_part.done", item_id=mid, output_index=0,
                        content_index=0, part=part)
                + event("response.output_item.done", output_index=0, item=done)
                + event("response.completed", response=response("completed", [done])))
        await resp.write_eof()
        return resp


async def messages(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages``, streamed: the events an Anthropic client reads."""
    body = await request.json(loads=orjson.loads)
    model = body["model"]
    mid = "msg_" + secrets.token_hex(12)
    async with request.app[SESSION].post(f"{POE}/bot/{model}",
                                         data=poe_query(body["messages"]),
                                         headers=poe_headers(request)) as upstream:
        if upstream.status != 200:
            return web.json_response({"type": "error", "error": {
                "type": "api_error", "message": await upstream.text()}}, status=502)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)
        message = {"id": mid, "type": "message", "role": "assistant", "model": model,
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 0, "output_tokens": 0}}
        await resp.write(
            typed("message_start", {"type": "message_start", "message": message})
            + typed("content_block_start", {"type": "content_block_start", "index": 0,
                                            "content_block": {"type": "text", "text": ""}}))
        async for name, data in poe_events(upstream):
            if name == "text":
                await resp.write(typed("content_block_delta", {
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": data["text"]}}))
            elif name == "error":
                await resp.write(typed("error", {"type": "error", "error": {
                    "type": "api_error", "message": data.get("text")}}))
                break
        else:
            await resp.write(
                typed("content_block_stop", {"type": "content_block_stop", "index": 0})
                + typed("message_delta", {"type": "message_delta",
                                          "delta": {"stop_reason": "end_turn",
                                                    "stop_sequence": None},
                                          "usage": {"output_tokens": 0}})
                + typed("message_stop", {"type": "message_stop"}))
        await resp.write_eof()
        return resp


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json(loads=orjson.loads)
    model = body["model"]
    cid, created = "chatcmpl-" + secrets.token_hex(12), int(time.time())
    async with request.app[SESSION].post(f"{POE}/bot/{model}", data=poe_query(body["messages"]),
                                         headers=poe_headers(request)) as upstream:
        if upstream.status != 200:
            text = await upstream.text()
            return web.json_response({"error": {"message": text, "type": "upstream_error"}},
                                     status=502)
        if not body.get("stream"):
            parts: list[str] = []
            async for name, data in poe_events(upstream):
                if name == "text":
                    parts.append(data["text"])
                elif name == "replace_response":
                    parts = [data["text"]]
                elif name == "error":
                    return web.json_response({"error": {"message": data.get("text"),
                                                        "type": "upstream_error"}}, status=502)
            message = {"role": "assistant", "content": "".join(parts)}
            return web.Response(body=orjson.dumps({
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }), content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)
        await resp.write(chunk(cid, created, model, {"role": "assistant", "content": ""}))
        async for name, data in poe_events(upstream):
            if name == "text":
                await resp.write(chunk(cid, created, model, {"content": data["text"]}))
            elif name == "error":
                error = {"message": data.get("text"), "type": "upstream_error"}
                await resp.write(b"data: " + orjson.dumps({"error": error}) + b"\n\n")
                break
        else:
            await resp.write(chunk(cid, created, model, {}, "stop"))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def client_session(app: web.Application) -> AsyncIterator[None]:
    # No pool limit: every open stream holds one upstream connection.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        app[SESSION] = session
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description="Minimal Poe → OpenAI converter (benchmark)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    app = web.Application()
    app.cleanup_ctx.append(client_session)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/responses", responses)
    app.router.add_post("/v1/messages", messages)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host=args.host, port=args.port, loop=uvloop.new_event_loop(),
                access_log=None, print=None)


if __name__ == "__main__":
    main()
