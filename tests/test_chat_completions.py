"""Chat Completions through the proxy against the fake Poe: the official SDK and raw bytes."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient

from poe2openai.tokenizer import TOKENIZER
from tests.fake_poe import ANSWERS, FakePoe, done, replace, text
from tests.helpers import AUTH, chat_body, parse_sse, stream_text

# Scenarios whose final answer is plain text (no media, tools or errors).
TEXT_SCENARIOS = [
    "basic", "no-meta", "meta-not-first", "replace", "multi-replace", "suggested", "empty-text",
    "unicode", "long-output", "huge-line", "data-ping-unknown-index", "crlf", "cr-only",
    "mixed-endings", "comments", "field-syntax", "multiline-data", "split-random", "split-crlf",
    "coalesced", "split-utf8", "slow-drip", "close-no-done", "no-trailing-blank-line",
    "bytes-after-done",
]
# A replacement that rewrites text already streamed cannot be retracted (see README).
REWRITES = {"replace", "multi-replace"}


async def test_sdk_non_stream(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    fake_poe.script("GPT-4o", [text("Hel"), text("lo!"), done()])
    reply = await sdk.chat.completions.create(
        model="GPT-4o", messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content == "Hello!"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "GPT-4o" and reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.usage is not None and reply.usage.completion_tokens == TOKENIZER.count("Hello!")
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


async def test_sdk_stream(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    fake_poe.script("GPT-4o", [text("Hel"), text("lo!"), done()])
    stream = await sdk.chat.completions.create(
        model="GPT-4o", messages=[{"role": "user", "content": "Hi"}], stream=True)
    chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello!"
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert len({(c.id, c.created, c.model) for c in chunks}) == 1
    assert chunks[0].model == "GPT-4o" and all(c.usage is None for c in chunks)


async def test_sdk_stream_helper_accumulates(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    """The SDK's own stream() helper needs role, finish_reason and consistent chunks."""
    fake_poe.script("GPT-4o", [text("Hel"), text("lo!"), done()])
    async with sdk.chat.completions.stream(
            model="GPT-4o", messages=[{"role": "user", "content": "Hi"}]) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == "Hello!"
    assert final.choices[0].finish_reason == "stop"


async def test_sdk_stream_usage_chunk(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    fake_poe.script("GPT-4o", [text("Hello!"), done()])
    stream = await sdk.chat.completions.create(
        model="GPT-4o", messages=[{"role": "user", "content": "Hi"}], stream=True,
        stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == TOKENIZER.count("Hello!")
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_stream_bytes(proxy: TestClient[Any, Any], fake_poe: FakePoe) -> None:
    fake_poe.script("GPT-4o", [text("a"), text("b"), done()])
    resp = await proxy.post("/v1/chat/completions", json=chat_body(stream=True),
                            headers={**AUTH, "Accept-Encoding": "gzip, br"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["X-Accel-Buffering"] == "no"
    assert "Content-Encoding" not in resp.headers
    raw = await resp.read()
    payloads = parse_sse(raw)
    assert payloads[-1] == "[DONE]"
    first, *middle, last, _ = payloads
    assert first["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                 "logprobs": None, "finish_reason": None}]
    assert last["choices"] == [{"index": 0, "delta": {}, "logprobs": None,
                                "finish_reason": "stop"}]
    assert stream_text(middle) == "ab"
    for p in payloads[:-1]:
        assert p["object"] == "chat.completion.chunk" and p["model"] == "GPT-4o"
        assert p["id"] == first["id"] and p["created"] == first["created"]
        assert isinstance(p["created"], int) and "usage" not in p


@pytest.mark.parametrize("scenario", TEXT_SCENARIOS)
async def test_scenarios_non_stream(proxy: TestClient[Any, Any], scenario: str) -> None:
    resp = await proxy.post("/v1/chat/completions", json=chat_body(model=f"scenario-{scenario}"),
                            headers=AUTH)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["choices"][0]["message"]["content"] == ANSWERS[scenario]


@pytest.mark.parametrize("scenario", TEXT_SCENARIOS)
async def test_scenarios_stream(proxy: TestClient[Any, Any], scenario: str) -> None:
    resp = await proxy.post("/v1/chat/completions",
                            json=chat_body(model=f"scenario-{scenario}", stream=True),
                            headers=AUTH)
    assert resp.status == 200
    payloads = parse_sse(await resp.read())
    got = stream_text(payloads)
    if scenario in REWRITES:
        assert got.endswith("\n\n" + ANSWERS[scenario])
    else:
        assert got == ANSWERS[scenario]
    assert payloads[-1] == "[DONE]" and payloads[-2]["choices"][0]["finish_reason"] == "stop"


async def test_replace_that_extends_streams_exact_text(proxy: TestClient[Any, Any],
                                                       fake_poe: FakePoe) -> None:
    fake_poe.script("GPT-4o", [text("Hello"), replace("Hello, wor"), text("ld"), done()])
    resp = await proxy.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
    assert stream_text(parse_sse(await resp.read())) == "Hello, world"


async def test_request_reaches_poe_translated(proxy: TestClient[Any, Any],
                                              fake_poe: FakePoe) -> None:
    fake_poe.script(None, [text("ok"), done()])
    body = {
        "model": "Claude-Sonnet-4.5",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Really."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"},
                                         {"type": "text", "text": "there"}]},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
        ],
        "temperature": 0.3, "stop": "STOP", "logit_bias": {"42": 5}, "top_p": 0.9, "seed": 1,
    }
    resp = await proxy.post("/v1/chat/completions", json=body, headers=AUTH)
    assert resp.status == 200
    assert resp.headers["x-dropped-params"] == "seed, top_p"
    got = fake_poe.last
    assert got is not None
    assert got.bot == "Claude-Sonnet-4.5" and got.api_key == "test-key"
    assert got.body["version"] == "1.2" and got.body["type"] == "query"
    assert [(m["role"], m["content"]) for m in got.body["query"]] == [
        ("system", "Be brief."), ("system", "Really."), ("user", "Hi\nthere"), ("bot", "Hello"),
        ("user", "Bye")]
    assert got.body["temperature"] == 0.3 and got.body["stop_sequences"] == ["STOP"]
    assert got.body["logit_bias"] == {"42": 5.0}


@pytest.mark.parametrize("path", ["/chat/completions", "/v1/chat/completions/",
                                  "/v1/v1/chat/completions", "/chat/completions/"])
async def test_route_variants(proxy: TestClient[Any, Any], fake_poe: FakePoe, path: str) -> None:
    fake_poe.script(None, [text("ok"), done()])
    resp = await proxy.post(path, json=chat_body(), headers=AUTH)
    assert resp.status == 200
    assert (await resp.json())["choices"][0]["message"]["content"] == "ok"


async def test_health(proxy: TestClient[Any, Any], fake_poe: FakePoe) -> None:
    resp = await proxy.get("/healthz")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"
    assert fake_poe.requests == []


async def test_large_bodies_are_parsed_off_the_loop(proxy: TestClient[Any, Any],
                                                    fake_poe: FakePoe) -> None:
    """Bodies over 1 MiB (inline images, long documents) take the worker-thread path,
    with and without a Content-Length."""
    import asyncio
    import io
    import json

    fake_poe.script(None, [text("ok"), done()])
    big = "é" * 700_000  # 1.4 MB of UTF-8
    raw = json.dumps(chat_body(big), ensure_ascii=False).encode()
    headers = {**AUTH, "Content-Type": "application/json"}
    resps = await asyncio.gather(*[
        proxy.post("/v1/chat/completions", data=io.BytesIO(raw), headers=headers)
        for _ in range(3)])
    for resp in resps:
        assert resp.status == 200
    assert [r.body["query"][0]["content"] for r in fake_poe.requests] == [big] * 3

    async def chunks() -> Any:
        yield b'{"model": "GPT-4o", "messages": [{"role": "user", "content": "'
        yield b"x" * 1_500_000
        yield b'"}]}'

    resp = await proxy.post("/v1/chat/completions", data=chunks(), headers=headers)
    assert resp.status == 200 and len(fake_poe.last.body["query"][0]["content"]) == 1_500_000


async def test_large_image_upload(sdk: Any, fake_poe: FakePoe) -> None:
    import base64

    fake_poe.script(None, [text("ok"), done()])
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8192  # ~2 MiB
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    reply = await sdk.chat.completions.create(model="GPT-4o", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]}])
    assert reply.choices[0].message.content == "ok"
    assert [u.data for u in fake_poe.uploads] == [png]
    assert len(fake_poe.last.body["query"][-1]["attachments"]) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_proxy_overhead_header_leaves_out_the_wait_for_poe(
        proxy: TestClient[Any, Any], fake_poe: FakePoe, stream: bool) -> None:
    from tests.fake_poe import sleep

    fake_poe.script("SlowBot", [sleep(0.6), text("Hi"), done()])
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json=chat_body(model="SlowBot", stream=stream))
    await resp.read()
    overhead = float(resp.headers["x-proxy-overhead-ms"])
    # Poe took at least 600 ms before its first event; none of that is the proxy's.
    assert 0 <= overhead < 500


async def test_proxy_overhead_leaves_out_a_wait_past_first_byte_wait(
        make_proxy: Any, fake_poe: FakePoe) -> None:
    """The stream starts when FIRST_BYTE_WAIT runs out: the wait cut short by it is still
    Poe's time, not the proxy's."""
    from tests.fake_poe import sleep

    proxy = await make_proxy(first_byte_wait=0.5)
    fake_poe.script("SlowBot", [sleep(1.2), text("Hi"), done()])
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json=chat_body(model="SlowBot", stream=True))
    assert resp.status == 200
    overhead = float(resp.headers["x-proxy-overhead-ms"])
    assert 0 <= overhead < 400  # the 500 ms spent waiting are left out
    assert "Hi" in (await resp.read()).decode()
