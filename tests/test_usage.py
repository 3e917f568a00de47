"""usage through the proxy: always in non-stream answers, in streams only when asked for."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient

from poe2openai.api import counting as serving
from poe2openai.tokenizer import Tokenizer
from poe2openai.translate.usage import count_tokens, prompt_tokens
from tests.fake_poe import FakePoe, done, text
from tests.helpers import AUTH, chat_body, parse_sse
from tests.test_messages import parse_events as messages_events
from tests.test_responses import parse_events as responses_events

MSG: Any = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(autouse=True)
def estimate_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts are the documented estimate here, even where an o200k_base file is cached."""
    monkeypatch.setattr(serving, "TOKENIZER", Tokenizer({"TIKTOKEN_ENCODING_PATH": ""}))


def check_usage(usage: Any, prompt: list[str] | None = None) -> None:
    """The usage object's shape, and its prompt count: the chat format's overhead plus the
    estimate of each message the bot was sent (``chat_body``'s one "Hi" by default)."""
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    texts = ["Hi"] if prompt is None else prompt
    assert usage["prompt_tokens"] == prompt_tokens(texts) == 2 + sum(
        4 + count_tokens(t) for t in texts)
    assert set(usage["completion_tokens_details"]) >= {"reasoning_tokens"}
    assert set(usage["prompt_tokens_details"]) >= {"cached_tokens"}


async def test_non_stream_always_has_usage(proxy: TestClient[Any, Any]) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=chat_body())
    body = await resp.json()
    check_usage(body["usage"])
    assert body["usage"]["completion_tokens"] == count_tokens("Hello, world!")


async def test_stream_usage_only_when_asked(proxy: TestClient[Any, Any]) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=chat_body(stream=True))
    payloads = parse_sse(await resp.read())
    assert all(p == "[DONE]" or (p["choices"] and not p.get("usage")) for p in payloads)

    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=chat_body(
        stream=True, stream_options={"include_usage": True}))
    payloads = parse_sse(await resp.read())
    assert payloads[-1] == "[DONE]"
    last = payloads[-2]
    assert last["choices"] == [] and last["usage"]
    check_usage(last["usage"])
    assert all(p["choices"] for p in payloads[:-2])
    assert payloads[-3]["choices"][0]["finish_reason"] == "stop"


async def test_sdk_stream_usage_with_reasoning(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(model="scenario-thinking", messages=MSG,
                                               stream=True,
                                               stream_options={"include_usage": True})
    usage = None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
    assert usage is not None
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == count_tokens("step one\nstep two")
    assert usage.completion_tokens == count_tokens("The answer is 42.") + \
        usage.completion_tokens_details.reasoning_tokens


async def test_prompt_counts_tool_definitions(proxy: TestClient[Any, Any],
                                              fake_poe: FakePoe) -> None:
    fake_poe.script("Counter", [text("ok"), done()])
    tool = {"type": "function", "function": {"name": "lookup", "description": "x" * 400}}
    plain = await (await proxy.post("/v1/chat/completions", headers=AUTH,
                                    json=chat_body(model="Counter"))).json()
    with_tools = await (await proxy.post("/v1/chat/completions", headers=AUTH,
                                         json=chat_body(model="Counter", tools=[tool]))).json()
    assert with_tools["usage"]["prompt_tokens"] >= plain["usage"]["prompt_tokens"] + 100


async def test_exact_counts_with_a_local_encoding(
        proxy: TestClient[Any, Any], fake_poe: FakePoe, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ranks = [bytes([b]) for b in range(256)] + [b"he", b"ll", b"hell", b"hello"]
    path = tmp_path / "o200k_base.tiktoken"
    path.write_bytes(b"".join(base64.b64encode(t) + b" %d\n" % i for i, t in enumerate(ranks)))
    tokenizer = Tokenizer({"TIKTOKEN_ENCODING_PATH": str(path)})
    monkeypatch.setattr(serving, "TOKENIZER", tokenizer)
    fake_poe.script("Hello", [text("hello" * 20), done()])
    body = await (await proxy.post("/v1/chat/completions", headers=AUTH,
                                   json=chat_body(model="Hello"))).json()
    assert tokenizer.loaded and tokenizer.exact  # loaded on first use, in a worker thread
    assert body["usage"]["completion_tokens"] == 20 != count_tokens("hello" * 20)


@pytest.mark.parametrize("exact", [False, True])
async def test_long_streams_count_what_a_whole_answer_counts(
        proxy: TestClient[Any, Any], fake_poe: FakePoe, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, exact: bool) -> None:
    """A stream counts its answer as it goes (holding little of it); the usage it reports
    is the count of the whole answer, as the same answer unstreamed reports it, on every
    face."""
    ranks = [bytes([b]) for b in range(256)] + [b"he", b"ll", b"hell", b"hello"]
    path = tmp_path / "o200k_base.tiktoken"
    path.write_bytes(b"".join(base64.b64encode(t) + b" %d\n" % i for i, t in enumerate(ranks)))
    tokenizer = Tokenizer({"TIKTOKEN_ENCODING_PATH": str(path) if exact else ""})
    tokenizer.load()
    monkeypatch.setattr(serving, "TOKENIZER", tokenizer)
    words = ["hello", "world,", "día", "日本語", "12345", "don't", "😀", "x"]
    answer = " ".join(words[i % len(words)] * (1 + i % 3) for i in range(900))
    fake_poe.script("Long", [*(text(answer[i:i + 9]) for i in range(0, len(answer), 9)),
                             done()])
    whole = tokenizer.count(answer)
    plain = await (await proxy.post("/v1/chat/completions", headers=AUTH,
                                    json=chat_body(model="Long"))).json()
    assert plain["usage"]["completion_tokens"] == whole
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=chat_body(
        model="Long", stream=True, stream_options={"include_usage": True}))
    assert parse_sse(await resp.read())[-2]["usage"]["completion_tokens"] == whole
    resp = await proxy.post("/v1/responses", headers=AUTH,
                            json={"model": "Long", "input": "Hi", "stream": True})
    done_events = [p for p in responses_events(await resp.read())
                   if p["type"] == "response.completed"]
    assert done_events[0]["response"]["usage"]["output_tokens"] == whole
    resp = await proxy.post("/v1/messages", headers=AUTH, json={
        "model": "Long", "max_tokens": 100, "stream": True,
        "messages": [{"role": "user", "content": "Hi"}]})
    deltas = [p for p in messages_events(await resp.read()) if p["type"] == "message_delta"]
    assert deltas[-1]["usage"]["output_tokens"] == whole
