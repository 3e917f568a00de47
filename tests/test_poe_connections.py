"""Poe connections are reused: an answer that sent ``done`` gives its connection back to the
pool (after the end of its body, read in the background when it comes late), so the next
query needs no new connection (TCP, and TLS with the real Poe). One that did not finish is
dropped, so Poe stops generating."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from poe2openai.poe import stream as poe_stream
from tests.fake_poe import FakePoe, done, hang, sleep, text
from tests.helpers import AUTH, chat_body, parse_sse

Proxy = TestClient[Any, Any]


async def _ask(proxy: Proxy, stream: bool = True) -> str:
    resp = await proxy.post("/v1/chat/completions", json=chat_body(stream=stream), headers=AUTH)
    assert resp.status == 200, await resp.text()
    if not stream:
        return str((await resp.json())["choices"][0]["message"]["content"])
    return "".join(chunk["choices"][0]["delta"].get("content") or ""
                   for chunk in parse_sse(await resp.read())
                   if isinstance(chunk, dict) and chunk.get("choices"))


async def _settle(fake: FakePoe, n: int) -> None:
    """Until the fake has finished ``n`` answers and the proxy had a moment to read their
    ends."""
    for rec in fake.requests[:n]:
        assert await rec.wait_finished(5.0)
    await asyncio.sleep(0.2)


@pytest.mark.parametrize("stream", [True, False])
async def test_answers_that_end_reuse_one_connection(proxy: Proxy, fake_poe: FakePoe,
                                                     stream: bool) -> None:
    fake_poe.script(None, [text("Hello"), done()])
    for i in range(3):
        assert await _ask(proxy, stream) == "Hello"
        await _settle(fake_poe, i + 1)
    peers = {rec.peer for rec in fake_poe.requests}
    assert len(fake_poe.requests) == 3 and len(peers) == 1, peers


async def test_a_late_end_after_done_is_read_and_the_connection_reused(
        proxy: Proxy, fake_poe: FakePoe) -> None:
    # The answer is complete at "done"; the body's end comes 0.3 s later.
    fake_poe.script(None, [text("Hello"), done(), sleep(0.3)])
    started = asyncio.get_running_loop().time()
    assert await _ask(proxy) == "Hello"
    # The client was not kept waiting for the end.
    assert asyncio.get_running_loop().time() - started < 0.25
    await _settle(fake_poe, 1)
    assert await _ask(proxy) == "Hello"
    await _settle(fake_poe, 2)
    assert fake_poe.requests[0].peer == fake_poe.requests[1].peer
    assert not fake_poe.requests[0].cancelled.is_set()


async def test_an_end_that_never_comes_drops_the_connection(
        proxy: Proxy, fake_poe: FakePoe, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(poe_stream, "END_WAIT", 0.3)
    fake_poe.script(None, [text("Hello"), done(), hang()])
    assert await _ask(proxy) == "Hello"
    # Dropped after END_WAIT: the fake sees its answer cancelled. Nothing went wrong for
    # anyone, so nothing is logged as a warning.
    assert await fake_poe.requests[0].wait_cancelled(3.0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    fake_poe.script(None, [text("Again"), done()])
    assert await _ask(proxy) == "Again"
    assert fake_poe.requests[0].peer != fake_poe.requests[1].peer


async def test_an_unfinished_answer_drops_its_connection(proxy: Proxy,
                                                         fake_poe: FakePoe) -> None:
    fake_poe.script(None, [text("first"), hang()])
    resp = await proxy.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
    assert b"first" in await resp.content.readuntil(b"first")
    resp.close()
    assert await fake_poe.requests[0].wait_cancelled(2.0)
    fake_poe.script(None, [text("Hello"), done()])
    assert await _ask(proxy) == "Hello"
    assert fake_poe.requests[0].peer != fake_poe.requests[1].peer
