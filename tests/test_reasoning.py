"""Reasoning through the proxy: Poe's "Thinking..." text → reasoning_content / <think> / hidden."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient

from poe2openai.registry import ModelOptions
from tests.fake_poe import FakePoe, done, text
from tests.helpers import AUTH, chat_body, parse_sse, stream_text
from tests.model_options import use_options

THINKING = "scenario-thinking"  # "*Thinking...*\n\n> step one\n> step two\n\nThe answer is 42."


async def test_non_stream_reasoning_content(sdk: openai.AsyncOpenAI) -> None:
    resp = await sdk.chat.completions.create(model=THINKING, messages=[
        {"role": "user", "content": "Think"}])
    msg = resp.choices[0].message
    assert msg.content == "The answer is 42."
    assert getattr(msg, "reasoning_content", None) == "step one\nstep two"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    details = resp.usage.completion_tokens_details
    assert details is not None and details.reasoning_tokens and details.reasoning_tokens > 0
    assert resp.usage.completion_tokens > details.reasoning_tokens


async def test_stream_reasoning_deltas_with_the_sdk(sdk: openai.AsyncOpenAI) -> None:
    reasoning, content = [], []
    stream = await sdk.chat.completions.create(model=THINKING, stream=True, messages=[
        {"role": "user", "content": "Think"}])
    async for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        reasoning.append(getattr(delta, "reasoning_content", None) or "")
        content.append(delta.content or "")
        # Reasoning and answer never share a delta
        assert not (getattr(delta, "reasoning_content", None) and delta.content)
    assert "".join(reasoning) == "step one\nstep two"
    assert "".join(content) == "The answer is 42."


@pytest.mark.parametrize("split", [1, 3, "random"])
async def test_thinking_split_anywhere_in_the_byte_stream(
        proxy: TestClient[Any, Any], fake_poe: FakePoe, split: int | str) -> None:
    fake_poe.script("Thinker", [
        text("*Think"), text("ing...*\n"), text("\n> first"), text(" line\n>"),
        text(" second\n\nAnswer "), text("here. Thinking... later is text."), done()],
        split=split)
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json=chat_body(model="Thinker", stream=True))
    payloads = parse_sse(await resp.read())
    assert stream_text(payloads, "reasoning_content") == "first line\nsecond"
    assert stream_text(payloads) == "Answer here. Thinking... later is text."


async def test_thinking_marker_only_at_the_start(proxy: TestClient[Any, Any],
                                                 fake_poe: FakePoe) -> None:
    """B9: "Thinking..." inside an answer is just text."""
    answer = "Sure.\n\nThinking... is hard.\n> a quote\n"
    fake_poe.script("Plain", [text(answer[:9]), text(answer[9:]), done()])
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=chat_body(model="Plain"))
    body = await resp.json()
    assert body["choices"][0]["message"]["content"] == answer
    assert "reasoning_content" not in body["choices"][0]["message"]


async def test_end_of_thinking_and_answer_in_one_event(proxy: TestClient[Any, Any],
                                                       fake_poe: FakePoe) -> None:
    """B8: no duplicated prefix (non-stream) and none lost (stream, done right after)."""
    fake_poe.script("B8", [text("*Thinking...*\n> plan"), text("\n\nFinal answer"), done()])
    for stream in (False, True):
        resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                                json=chat_body(model="B8", stream=stream))
        if stream:
            payloads = parse_sse(await resp.read())
            got = stream_text(payloads), stream_text(payloads, "reasoning_content")
        else:
            msg = (await resp.json())["choices"][0]["message"]
            got = msg["content"], msg["reasoning_content"]
        assert got == ("Final answer", "plan")


@pytest.mark.parametrize("stream", [False, True])
async def test_think_format(proxy: TestClient[Any, Any], stream: bool) -> None:
    use_options(proxy, {THINKING: ModelOptions(reasoning_format="think")})
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json=chat_body(model=THINKING, stream=stream))
    if stream:
        payloads = parse_sse(await resp.read())
        content, reasoning = stream_text(payloads), stream_text(payloads, "reasoning_content")
    else:
        msg = (await resp.json())["choices"][0]["message"]
        content, reasoning = msg["content"], msg.get("reasoning_content", "")
    assert content == "<think>\nstep one\nstep two\n</think>\n\nThe answer is 42."
    assert reasoning == ""


@pytest.mark.parametrize("stream", [False, True])
async def test_hidden_format(proxy: TestClient[Any, Any], stream: bool) -> None:
    use_options(proxy, {THINKING: ModelOptions(reasoning_format="hidden")})
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json=chat_body(model=THINKING, stream=stream))
    if stream:
        payloads = parse_sse(await resp.read())
        assert stream_text(payloads) == "The answer is 42."
        assert stream_text(payloads, "reasoning_content") == ""
    else:
        msg = (await resp.json())["choices"][0]["message"]
        assert msg["content"] == "The answer is 42." and "reasoning_content" not in msg
