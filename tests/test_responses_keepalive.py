"""Keep-alives on a Responses stream are real SSE events, not comments: Codex's idle timeout
counts only events (its SSE parser drops comments), so a bot that thinks longer than that
timeout in silence would otherwise have its answer cut off and asked again."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import openai
from aiohttp.test_utils import TestClient

from tests.fake_poe import FakePoe, done, sleep, text
from tests.helpers import AUTH

Proxy = TestClient[Any, Any]


def _frames(raw: bytes) -> list[list[str]]:
    return [frame.split("\n") for frame in raw.decode().split("\n\n")[:-1]]


async def test_keepalives_are_events_while_poe_thinks(
        make_proxy: Callable[..., Awaitable[Proxy]], fake_poe: FakePoe) -> None:
    fake_poe.script(None, [text("a"), sleep(0.6), text("b"), done()])
    proxy = await make_proxy(keepalive_interval=0.1)
    resp = await proxy.post("/v1/responses", headers=AUTH,
                            json={"model": "GPT-4o", "input": "Hi", "stream": True})
    frames = _frames(await resp.read())
    assert all(not line.startswith(":") for frame in frames for line in frame)  # no comments
    keepalives = [f for f in frames if f == ["event: keepalive", 'data: {"type":"keepalive"}']]
    assert len(keepalives) >= 2
    others = [json.loads(f[1][6:]) for f in frames if f not in keepalives]
    # The keep-alives take no sequence number: the others still count 0, 1, 2, …
    assert [e["sequence_number"] for e in others] == list(range(len(others)))
    assert others[-1]["type"] == "response.completed"
    assert others[-1]["response"]["output"][0]["content"][0]["text"] == "ab"


async def test_sdk_stream_helper_reads_past_keepalives(
        make_proxy: Callable[..., Awaitable[Proxy]], fake_poe: FakePoe) -> None:
    fake_poe.script(None, [text("a"), sleep(0.6), text("b"), done()])
    proxy = await make_proxy(keepalive_interval=0.1)
    async with openai.AsyncOpenAI(base_url=str(proxy.make_url("/v1")), api_key="test-key",
                                  max_retries=0, timeout=20) as client:
        async with client.responses.stream(model="GPT-4o", input="Hi") as stream:
            kinds = [event.type async for event in stream]
            final = await stream.get_final_response()
    assert "keepalive" in kinds and kinds[-1] == "response.completed"
    assert final.output_text == "ab"
