"""CORS for browser clients: preflights, headers on answers and streams, no credentials."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from tests.fake_poe import FakePoe, done, text
from tests.helpers import AUTH, chat_body

Proxy = TestClient[Any, Any]
ORIGIN = "https://chat.example.com"


def preflight(path: str = "/v1/chat/completions", origin: str = ORIGIN) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os"}


async def test_preflight(proxy: Proxy) -> None:
    for path in ("/v1/chat/completions", "/chat/completions", "/v1/models"):
        resp = await proxy.options(path, headers=preflight(path))
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        allowed = resp.headers["Access-Control-Allow-Headers"].lower()
        assert {"authorization", "content-type", "x-stainless-os"} <= {
            h.strip() for h in allowed.split(",")}
        # The route's own methods, no others.
        wanted = "GET, OPTIONS" if path.endswith("/models") else "OPTIONS, POST"
        assert resp.headers["Access-Control-Allow-Methods"] == wanted
        assert resp.headers["Allow"] == wanted
        assert "Access-Control-Allow-Credentials" not in resp.headers
    resp = await proxy.options("/v1/responses/resp_1")  # a plain OPTIONS, no preflight
    assert resp.status == 204 and resp.headers["Allow"] == "DELETE, GET, OPTIONS"


async def test_answers_and_streams_carry_cors_headers(proxy: Proxy, fake_poe: FakePoe) -> None:
    fake_poe.script(None, [text("ok"), done()])
    headers = {**AUTH, "Origin": ORIGIN}
    for body in (chat_body(), chat_body(stream=True)):
        resp = await proxy.post("/v1/chat/completions", json=body, headers=headers)
        await resp.read()
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "x-dropped-params" in resp.headers["Access-Control-Expose-Headers"]
    resp = await proxy.post("/v1/chat/completions", json=chat_body(), headers={"Origin": ORIGIN})
    assert resp.status == 401 and resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_restricted_origins(make_proxy: Callable[..., Awaitable[Proxy]]) -> None:
    proxy = await make_proxy(cors_allow_origins=(ORIGIN,))
    resp = await proxy.options("/v1/models", headers=preflight(origin=ORIGIN))
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in resp.headers["Vary"]
    resp = await proxy.options("/v1/models", headers=preflight(origin="https://evil.example"))
    assert "Access-Control-Allow-Origin" not in resp.headers
    resp = await proxy.get("/v1/models", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Access-Control-Allow-Credentials" not in resp.headers
