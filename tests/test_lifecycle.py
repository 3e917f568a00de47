"""Stream lifecycle: client disconnects cancel Poe, SIGTERM ends streams, the real server runs."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestClient

from tests.fake_poe import FakePoe, done, hang, sleep, text
from tests.helpers import AUTH, chat_body, parse_sse

Proxy = TestClient[Any, Any]


async def test_disconnect_before_first_token_cancels_poe(proxy: Proxy, fake_poe: FakePoe) -> None:
    fake_poe.script(None, [hang()])
    task = asyncio.create_task(proxy.post("/v1/chat/completions", json=chat_body(stream=True),
                                          headers=AUTH))
    assert await fake_poe.wait_for_requests(1, timeout=5)
    task.cancel()
    gone = asyncio.get_running_loop().time()
    assert await fake_poe.requests[0].wait_cancelled(1.0)
    assert fake_poe.requests[0].cancelled_at - gone < 1.0


async def test_disconnect_mid_stream_cancels_poe(proxy: Proxy, fake_poe: FakePoe) -> None:
    fake_poe.script(None, [text("first"), hang()])
    resp = await proxy.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
    assert resp.status == 200
    assert b"first" in await resp.content.readuntil(b"first")
    resp.close()
    assert await fake_poe.requests[0].wait_cancelled(1.0)


async def test_disconnect_during_non_stream_cancels_poe(proxy: Proxy, fake_poe: FakePoe) -> None:
    fake_poe.script(None, [text("partial"), sleep(30), done()])
    task = asyncio.create_task(proxy.post("/v1/chat/completions", json=chat_body(),
                                          headers=AUTH))
    assert await fake_poe.wait_for_requests(1, timeout=5)
    await asyncio.sleep(0.1)
    task.cancel()
    assert await fake_poe.requests[0].wait_cancelled(1.0)


async def test_finished_answer_is_not_reported_as_cancelled(proxy: Proxy,
                                                            fake_poe: FakePoe) -> None:
    fake_poe.script(None, [text("ok"), done()])
    resp = await proxy.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
    await resp.read()
    assert await fake_poe.requests[0].wait_finished(1.0)
    assert not fake_poe.requests[0].cancelled.is_set()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def server(fake_poe: FakePoe, tmp_path: Any) -> AsyncIterator[tuple[str, Any]]:
    """``python -m poe2openai`` as a real process on a free port."""
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "POE_BASE_URL": fake_poe.base_url,
           "CONFIG_DIR": str(tmp_path), "SHUTDOWN_TIMEOUT": "2", "LOG_LEVEL": "debug",
           "ADMIN_PASSWORD": "x"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "poe2openai", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    try:
        yield url, proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_real_server_with_the_sdk(server: tuple[str, Any], fake_poe: FakePoe) -> None:
    url, proc = server
    fake_poe.script(None, [text("Hello "), text("from Poe"), done()])
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-secret-key-123",
                                  max_retries=0) as sdk:
        reply = await sdk.chat.completions.create(
            model="GPT-4o", messages=[{"role": "user", "content": "Hi"}])
        assert reply.choices[0].message.content == "Hello from Poe"
        stream = await sdk.chat.completions.create(
            model="GPT-4o", messages=[{"role": "user", "content": "Hi"}], stream=True)
        assert "".join([c.choices[0].delta.content or "" async for c in stream]) == \
            "Hello from Poe"
        with pytest.raises(openai.RateLimitError):
            await sdk.chat.completions.create(
                model="scenario-no-points-text", messages=[{"role": "user", "content": "Hi"}])
    proc.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    log = out.decode()
    assert "listening on http://127.0.0.1" in log
    assert '"POST /v1/chat/completions" 200' in log and "model=GPT-4o" in log
    # a failed request says why, in one line
    assert "POST /v1/chat/completions -> 429 insufficient_quota: This bot needs more points" in log
    assert "sk-secret-key-123" not in log  # no key in any log line
    assert log.rstrip().endswith("poe2openai stopped")  # a clean stop says so


async def test_sigterm_ends_open_streams_cleanly(server: tuple[str, Any],
                                                 fake_poe: FakePoe) -> None:
    url, proc = server
    fake_poe.script(None, [text("started"), hang()])
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/v1/chat/completions", json=chat_body(stream=True),
                                headers=AUTH) as resp:
            assert b"started" in await resp.content.readuntil(b"started")
            t0 = asyncio.get_running_loop().time()
            proc.send_signal(signal.SIGTERM)
            rest = await asyncio.wait_for(resp.content.read(), 10)
            elapsed = asyncio.get_running_loop().time() - t0
    payloads = parse_sse(rest.split(b"\n\n", 1)[1])
    assert payloads[-1] == "[DONE]"
    assert payloads[-2]["error"]["code"] == "upstream_unavailable"
    assert elapsed < 2 + 2  # SHUTDOWN_TIMEOUT plus a margin
    assert await asyncio.wait_for(proc.wait(), 10) == 0
    assert await fake_poe.requests[0].wait_cancelled(1.0)


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream-before-first-byte"])
async def test_sigterm_ends_waiting_requests_within_the_bound(
        server: tuple[str, Any], fake_poe: FakePoe, stream: bool) -> None:
    url, proc = server
    fake_poe.script(None, [hang()])
    async with aiohttp.ClientSession() as session:
        request = asyncio.create_task(session.post(
            url + "/v1/chat/completions", json=chat_body(stream=stream), headers=AUTH))
        assert await fake_poe.wait_for_requests(1, timeout=5)
        t0 = asyncio.get_running_loop().time()
        proc.send_signal(signal.SIGTERM)
        resp = await asyncio.wait_for(request, 10)
        body = await resp.json()
        elapsed = asyncio.get_running_loop().time() - t0
        resp.release()
    assert resp.status == 503 and body["error"]["code"] == "upstream_unavailable"
    assert "shutting down" in body["error"]["message"]
    assert elapsed < 2 + 1  # SHUTDOWN_TIMEOUT plus a margin
    assert await asyncio.wait_for(proc.wait(), 10) == 0
    assert await fake_poe.requests[0].wait_cancelled(1.0)
