"""A minimal Poe → OpenAI converter: the benchmark's floor for what a proxy must cost.

No features: no model map, tools, reasoning, usage, keep-alives or error mapping. Just an
aiohttp server and client session, Poe's SSE read line by line, OpenAI chunks out with
orjson, on uvloop — written the plain way, not tuned and not made slow on purpose.

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


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json(loads=orjson.loads)
    model = body["model"]
    query = {
        "version": "1.2", "type": "query", "user_id": "", "conversation_id": "", "message_id": "",
        "query": [{"role": ROLES.get(m["role"], m["role"]), "content": m.get("content") or "",
                   "content_type": "text/markdown"} for m in body["messages"]],
    }
    headers = {"Authorization": request.headers.get("Authorization", ""),
               "Content-Type": "application/json", "Accept": "text/event-stream"}
    cid, created = "chatcmpl-" + secrets.token_hex(12), int(time.time())
    async with request.app[SESSION].post(f"{POE}/bot/{model}", data=orjson.dumps(query),
                                         headers=headers) as upstream:
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
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host=args.host, port=args.port, loop=uvloop.new_event_loop(),
                access_log=None, print=None)


if __name__ == "__main__":
    main()
