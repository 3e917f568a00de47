"""A minimal API face that calls the team hooks the way the shared answering loop does,
so the hooks are tested through real HTTP and a real (fake) Poe before any face is wired.

``POST /test/answer`` with ``{"model", "hold"?: bool}``: authenticate, check the model,
admit, ask the fake Poe with the key the gate chose, and answer ``{"text", "key"}``.
``hold`` keeps the request open until ``release`` is set (for concurrency tests).
``GET /test/models``: the catalog's models this key may see.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from poe2openai import keys
from poe2openai.settings import Settings
from poe2openai.team.gate import TEAM

RELEASE = web.AppKey("test_release", asyncio.Event)
ENTERED = web.AppKey("test_entered", list)


async def _answer(request: web.Request) -> web.Response:
    team = request.app[TEAM]
    obs = team.observe(request, face="test")
    access = team.authenticate(request)
    body = await request.json()
    model = body["model"]
    obs.model = model
    access.check_model(model)
    async with team.admit(access):
        request.app[ENTERED].append(model)
        if body.get("hold"):
            await request.app[RELEASE].wait()
        query = {"version": "1.2", "type": "query", "query": [
            {"role": "user", "content": "Hi", "content_type": "text/markdown"}],
            "user_id": "", "conversation_id": "", "message_id": ""}
        text = ""
        start = time.perf_counter()
        async with request.app[keys.POE].query(model, query, access.poe_key) as upstream:
            while (events := await upstream.read()) is not None:
                obs.first_byte()
                text += "".join(e[1].get("text", "") for e in events if e[0] == "text")
        obs.add_upstream(time.perf_counter() - start)
        obs.tokens_in, obs.tokens_out = 7, len(text)
        return web.json_response({"text": text, "key": access.name})


async def _models(request: web.Request) -> web.Response:
    team = request.app[TEAM]
    team.observe(request, face="models")
    access = team.authenticate(request)
    raw = await request.app[keys.CATALOG].get()
    return web.json_response({"data": access.visible([{"id": m["id"]} for m in raw])})


def add_test_face(app: web.Application) -> web.Application:
    app[RELEASE] = asyncio.Event()
    app[ENTERED] = []
    app.router.add_post("/test/answer", _answer)
    app.router.add_get("/test/models", _models)
    return app


def settings_with(base: Settings, **changes: Any) -> Settings:
    return base.replace(**changes)
