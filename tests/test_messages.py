"""The Anthropic Messages face (``/v1/messages``) through the proxy against the fake Poe: the
official ``anthropic`` SDK, tool loops, errors, count_tokens, the model list, raw events."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import API_KEY
from tests.fake_poe import FakePoe, done, text

Proxy = TestClient[Any, Any]
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
WEATHER: Any = {"name": "get_weather", "description": "Weather.",
                "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema",
                                 "type": "object", "properties": {"location": {"type": "string"}},
                                 "required": ["location"]}}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
PDF = base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()


@pytest.fixture
async def claude(proxy: Proxy) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=str(proxy.make_url("")), api_key=API_KEY,
                                        max_retries=0, timeout=20) as client:
        yield client


def parse_events(raw: bytes) -> list[dict[str, Any]]:
    """Every frame of a Messages stream; each must have ``event:`` equal to its ``type``."""
    text_ = raw.decode()
    assert text_.endswith("\n\n") and "\r" not in text_
    events = []
    for frame in text_.split("\n\n")[:-1]:
        lines = frame.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith(
            "data: "), frame
        data = json.loads(lines[1][6:])
        assert data["type"] == lines[0][7:], frame
        events.append(data)
    return events


def check_block_order(events: list[dict[str, Any]]) -> None:
    """Blocks are sequential: every block started is stopped, no delta outside its block."""
    assert events[0]["type"] == "message_start"
    open_index = None
    seen = -1
    for e in events:
        if e["type"] == "content_block_start":
            assert open_index is None and e["index"] == seen + 1
            open_index = seen = e["index"]
        elif e["type"] == "content_block_delta":
            assert e["index"] == open_index
        elif e["type"] == "content_block_stop":
            assert e["index"] == open_index
            open_index = None
    assert open_index is None


async def test_create_text(claude: anthropic.AsyncAnthropic, fake_poe: FakePoe) -> None:
    fake_poe.script("gpt-5", [text("Hel"), text("lo!"), done()])
    msg = await claude.messages.create(model="gpt-5", max_tokens=100, system="Be brief.",
                                       messages=[{"role": "user", "content": "Hi"}])
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == "Hello!"  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn" and msg.model == "gpt-5" and msg.role == "assistant"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert [(m["role"], m["content"]) for m in fake_poe.last.query] == [  # type: ignore[union-attr]
        ("system", "Be brief."), ("user", "Hi")]


async def test_stream_text(claude: anthropic.AsyncAnthropic, fake_poe: FakePoe) -> None:
    fake_poe.script("gpt-5", [text("Hel"), text("lo!"), done()])
    async with claude.messages.stream(model="gpt-5", max_tokens=100,
                                      messages=[{"role": "user", "content": "Hi"}]) as stream:
        chunks = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(chunks) == "Hello!"
    assert final.content[0].text == "Hello!" and final.stop_reason == "end_turn"  # type: ignore[union-attr]
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0


async def test_message_start_has_the_prompt_tokens(claude: anthropic.AsyncAnthropic,
                                                   fake_poe: FakePoe) -> None:
    """As Anthropic's: message_start carries the prompt's tokens (counted before Poe's first
    event once the tokenizer is loaded: the first request loads it), the same that the final
    usage reports."""
    fake_poe.script("gpt-5", [text("Hel"), text("lo!"), done()])
    await claude.messages.create(model="gpt-5", max_tokens=100,
                                 messages=[{"role": "user", "content": "warm up"}])
    async with claude.messages.stream(model="gpt-5", max_tokens=100, messages=[
            {"role": "user", "content": "How many tokens is this prompt, roughly?"}]) as stream:
        started = [e.message.usage.input_tokens async for e in stream
                   if e.type == "message_start"]
        final = await stream.get_final_message()
    assert started == [final.usage.input_tokens] and started[0] > 0


async def test_thinking(claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(
            model="scenario-thinking", max_tokens=1000,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "Why?"}]) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "step one\nstep two"  # type: ignore[union-attr]
    assert final.content[0].signature  # type: ignore[union-attr]
    assert final.content[1].text == "The answer is 42."  # type: ignore[union-attr]
    plain = await claude.messages.create(model="scenario-thinking", max_tokens=1000,
                                         messages=[{"role": "user", "content": "Why?"}])
    assert [b.type for b in plain.content] == ["thinking", "text"]


async def _run(claude: anthropic.AsyncAnthropic, stream: bool, **kwargs: Any) -> Any:
    if not stream:
        return await claude.messages.create(**kwargs)
    async with claude.messages.stream(**kwargs) as s:
        return await s.get_final_message()


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_loop(claude: anthropic.AsyncAnthropic, fake_poe: FakePoe,
                         stream: bool) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await _run(claude, stream, model="scenario-tools-native", max_tokens=500,
                       tools=[WEATHER], messages=messages)
    assert first.stop_reason == "tool_use"
    use = [b for b in first.content if b.type == "tool_use"]
    assert len(use) == 1 and use[0].name == "get_weather" and use[0].input == {
        "location": "Paris"}
    sent_schema = fake_poe.last.tools[0]["function"]["parameters"]  # type: ignore[index,union-attr]
    assert "$schema" not in sent_schema and sent_schema["required"] == ["location"]
    messages += [{"role": "assistant", "content": [b.model_dump() for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use[0].id,
                                               "content": [{"type": "text", "text": "18C"}]}]}]
    second = await _run(claude, stream, model="scenario-tools-native", max_tokens=500,
                        tools=[WEATHER], messages=messages)
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "Tool result: 18C"
    assert fake_poe.last.tool_results[0]["tool_call_id"] == use[0].id  # type: ignore[index,union-attr]


async def test_tool_stream_events(proxy: Proxy) -> None:
    resp = await proxy.post("/v1/messages?beta=true", headers={**HEADERS,
                                                                "Accept": "application/json"},
                            json={"model": "scenario-tools-native", "max_tokens": 100,
                                  "stream": True, "tools": [WEATHER],
                                  "messages": [{"role": "user", "content": "Weather?"}]})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    events = parse_events(await resp.read())
    check_block_order(events)
    start = next(e for e in events if e["type"] == "content_block_start")
    assert start["content_block"] == {"type": "tool_use", "id": "call_fake_1",
                                      "name": "get_weather", "input": {}}
    partial = "".join(e["delta"]["partial_json"] for e in events
                      if e["type"] == "content_block_delta")
    assert json.loads(partial) == {"location": "Paris"}
    assert [e["type"] for e in events][-2:] == ["message_delta", "message_stop"]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"]["output_tokens"] > 0


async def test_image_and_document_blocks(claude: anthropic.AsyncAnthropic,
                                         fake_poe: FakePoe) -> None:
    msg = await claude.messages.create(model="gpt-5", max_tokens=100, messages=[
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                            "data": PDF}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                            "data": "plain notes"}},
            {"type": "text", "text": "Describe these."}]}])
    assert msg.stop_reason == "end_turn"
    assert sorted(u.content_type for u in fake_poe.uploads) == ["application/pdf", "image/png"]
    user = fake_poe.last.query[-1]  # type: ignore[union-attr]
    assert len(user["attachments"]) == 2
    assert "plain notes" in user["content"] and "Describe these." in user["content"]


async def test_count_tokens(claude: anthropic.AsyncAnthropic, fake_poe: FakePoe) -> None:
    short = await claude.messages.count_tokens(
        model="gpt-5", messages=[{"role": "user", "content": "Hi"}])
    longer = await claude.messages.count_tokens(
        model="gpt-5", messages=[{"role": "user", "content": "Hi " * 200}], tools=[WEATHER])
    assert 0 < short.input_tokens < longer.input_tokens
    assert fake_poe.requests == []  # never a Poe query


@pytest.mark.parametrize(("scenario", "exc", "kind"), [
    ("invalid-token-text", anthropic.AuthenticationError, "authentication_error"),
    ("unknown-bot-text", anthropic.NotFoundError, "not_found_error"),
    ("error-no-retry-user_message_too_long", anthropic.BadRequestError,
     "invalid_request_error"),
    ("rate-limit-text", anthropic.RateLimitError, "rate_limit_error"),
    ("http-500", anthropic.InternalServerError, "api_error"),
    ("http-503", anthropic.InternalServerError, "overloaded_error"),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_errors_raise_sdk_exceptions(claude: anthropic.AsyncAnthropic, scenario: str,
                                           exc: type[Exception], kind: str,
                                           stream: bool) -> None:
    with pytest.raises(exc) as err:
        await _run(claude, stream, model=f"scenario-{scenario}", max_tokens=10,
                   messages=[{"role": "user", "content": "Hi"}])
    body = err.value.body  # type: ignore[attr-defined]
    assert body["type"] == "error" and body["error"]["type"] == kind


async def test_out_of_points_is_not_retried(proxy: Proxy) -> None:
    resp = await proxy.post("/v1/messages", headers=HEADERS, json={
        "model": "scenario-no-points-text", "max_tokens": 10,
        "messages": [{"role": "user", "content": "Hi"}]})
    assert resp.status == 429 and resp.headers["x-should-retry"] == "false"
    body = await resp.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"


async def test_error_mid_stream(proxy: Proxy) -> None:
    resp = await proxy.post("/v1/messages", headers=HEADERS, json={
        "model": "scenario-error-mid", "max_tokens": 10, "stream": True,
        "messages": [{"role": "user", "content": "Hi"}]})
    assert resp.status == 200
    events = parse_events(await resp.read())
    assert events[-1]["type"] == "error" and events[-1]["error"]["message"]
    assert "message_stop" not in [e["type"] for e in events]


@pytest.mark.parametrize(("body", "status"), [
    ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, 400),  # no max_tokens
    ({"model": "m", "max_tokens": 5, "messages": []}, 400),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}, 400),
])
async def test_bad_requests_use_the_anthropic_envelope(proxy: Proxy, fake_poe: FakePoe,
                                                       body: Any, status: int) -> None:
    resp = await proxy.post("/v1/messages", headers=HEADERS, json=body)
    assert resp.status == status
    data = await resp.json()
    assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
    assert fake_poe.requests == []
    no_key = await proxy.post("/v1/messages", json=body)
    assert no_key.status == 401 and (await no_key.json())["error"]["type"] == \
        "authentication_error"


async def test_claude_code_shaped_request(proxy: Proxy, fake_poe: FakePoe) -> None:
    """System messages inside messages, a billing-header system block, metadata.user_id as a
    JSON string, adaptive thinking, effort, context management, a server tool."""
    body = {
        "model": "GPT-4o", "max_tokens": 32000, "stream": True,
        "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"},
                   {"type": "text", "text": "You are Claude Code.",
                    "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>r"},
                                         {"type": "text", "text": "Hello",
                                          "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "Available agent types: none"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hm", "signature": ""},
                {"type": "text", "text": "Hi!"}]},
            {"role": "user", "content": "Again"}],
        "tools": [WEATHER, {"type": "web_search_20250305", "name": "web_search"},
                  {"type": "code_execution_20250825", "name": "code_execution"}],
        "metadata": {"user_id": json.dumps({"device_id": "d", "session_id": "s"})},
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    }
    resp = await proxy.post("/v1/messages?beta=true", json=body, headers={
        **HEADERS, "Accept": "application/json",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"})
    assert resp.status == 200, await resp.text()
    events = parse_events(await resp.read())
    check_block_order(events)
    assert events[-1]["type"] == "message_stop"
    query = [(m["role"], m["content"]) for m in fake_poe.last.query]  # type: ignore[union-attr]
    assert query == [
        ("system", "You are Claude Code."),  # the billing-header line is left out
        ("user", "<system-reminder>r\nHello"), ("system", "Available agent types: none"),
        ("bot", "Hi!"), ("user", "Again")]
    dropped = resp.headers["x-dropped-params"]
    for name in ("metadata", "context_management", "code_execution"):
        assert name in dropped


async def test_head_root_and_anthropic_model_list(proxy: Proxy) -> None:
    head = await proxy.head("/")
    assert head.status == 200
    resp = await proxy.get("/v1/models", headers=HEADERS)
    body = await resp.json()
    assert set(body) == {"data", "has_more", "first_id", "last_id"} and body["data"]
    first = body["data"][0]
    assert first["type"] == "model" and first["id"] == body["first_id"]
    assert first["display_name"] and first["created_at"].endswith("Z")
    openai_shape = await proxy.get("/v1/models", headers={"Authorization": f"Bearer {API_KEY}"})
    assert (await openai_shape.json())["object"] == "list"


@pytest.mark.parametrize("stream", [False, True])
async def test_forced_tool_from_a_bot_that_writes_json(claude: anthropic.AsyncAnthropic,
                                                       fake_poe: FakePoe, stream: bool) -> None:
    """tool_choice {"type": "tool"} (instructor, LangChain's ChatAnthropic): a bot that
    answers with the arguments in prose still gives a valid tool_use block."""
    fake_poe.script("prose-bot", [text("Sure:\n"), text('{"location": "Paris"}'),
                                  text("\nDone."), done()])
    msg = await _run(claude, stream, model="prose-bot", max_tokens=100, tools=[WEATHER],
                     tool_choice={"type": "tool", "name": "get_weather"},
                     messages=[{"role": "user", "content": "Weather in Paris?"}])
    assert msg.stop_reason == "tool_use"
    use = [b for b in msg.content if b.type == "tool_use"]
    assert len(use) == 1 and use[0].name == "get_weather"
    assert use[0].input == {"location": "Paris"}


async def test_output_format_json_schema(proxy: Proxy, fake_poe: FakePoe) -> None:
    fake_poe.script("prose-bot", [text("Here:\n```json\n{\"city\": \"Paris\"}\n```"), done()])
    resp = await proxy.post("/v1/messages", headers=HEADERS, json={
        "model": "prose-bot", "max_tokens": 100,
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "output_format": {"type": "json_schema", "schema": {
            "type": "object", "properties": {"city": {"type": "string"}},
            "required": ["city"]}}})
    body = await resp.json()
    assert body["content"] == [{"type": "text", "text": '{"city": "Paris"}'}]
    assert resp.headers["x-structured-output"] == "instructed"


async def test_anthropic_sdk_lists_and_retrieves_models(claude: anthropic.AsyncAnthropic) -> None:
    listed = [m async for m in claude.models.list()]
    assert listed and all(m.type == "model" and m.display_name for m in listed)
    one = await claude.models.retrieve(listed[0].id)
    assert one.id == listed[0].id and one.type == "model" and one.created_at is not None
