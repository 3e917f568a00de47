"""RATE_LIMIT_MS: request starts of one API key are spaced; other keys are not held up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from tests.fake_poe import FakePoe, done, text
from tests.helpers import assert_openai_error, chat_body

Proxy = TestClient[Any, Any]


def key(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"}


async def test_same_key_is_spaced_other_keys_are_not(
        make_proxy: Callable[..., Awaitable[Proxy]], fake_poe: FakePoe) -> None:
    fake_poe.script(None, [text("ok"), done()])
    proxy = await make_proxy(rate_limit_ms=400)
    first = await proxy.post("/v1/chat/completions", json=chat_body(), headers=key("alice"))
    assert first.status == 200
    second = asyncio.create_task(
        proxy.post("/v1/chat/completions", json=chat_body(), headers=key("alice")))
    other = await proxy.post("/v1/chat/completions", json=chat_body(), headers=key("bob"))
    assert other.status == 200
    assert (await second).status == 200
    alice1, bob, alice2 = (r for r in fake_poe.requests)  # the order Poe saw them in
    assert (alice1.api_key, bob.api_key, alice2.api_key) == ("alice", "bob", "alice")
    assert alice2.started_at - alice1.started_at >= 0.4 - 0.01  # a sleep never ends early


async def test_a_long_queue_is_refused_with_429(make_proxy: Callable[..., Awaitable[Proxy]],
                                                fake_poe: FakePoe) -> None:
    fake_poe.script(None, [text("ok"), done()])
    proxy = await make_proxy(rate_limit_ms=40_000)
    assert (await proxy.post("/v1/chat/completions", json=chat_body(),
                             headers=key("alice"))).status == 200
    resp = await proxy.post("/v1/chat/completions", json=chat_body(), headers=key("alice"))
    await assert_openai_error(resp, 429, "requests", "rate_limit_exceeded")
    assert 30 < int(resp.headers["retry-after"]) <= 40
    assert len(fake_poe.requests) == 1

