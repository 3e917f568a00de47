"""Structured output (``response_format``, ``text.format``) through the proxy against fake Poe
bots that answer in prose, fences, thinking blocks, wrongly then rightly, or never rightly."""

from __future__ import annotations

import json
from typing import Any

import openai
import pydantic
import pytest
from aiohttp.test_utils import TestClient

from tests.fake_poe import FakePoe, Received, done, text
from tests.helpers import AUTH, assert_openai_error, parse_sse, stream_text

Proxy = TestClient[Any, Any]


class City(pydantic.BaseModel):
    name: str
    population: int


GOOD = '{"name": "Paris", "population": 2102650}'
BAD = '{"name": "Paris", "population": "lots"}'
ANSWERS = {
    "fenced": [text("Sure! Here it is:\n\n```json\n"), text(GOOD[:12]), text(GOOD[12:]),
               text("\n```\nAnything else?")],
    "prose": [text("The city you asked about:\n"), text(GOOD), text("\nHope this helps.")],
    "thinking": [text("*Thinking...*\n\n> The user wants JSON.\n\n"), text(GOOD)],
    "bare": [text(GOOD[:5]), text(GOOD[5:])],
}
MESSAGES: Any = [{"role": "user", "content": "Largest city of France?"}]


def repairing(rec: Received) -> list[Any]:
    """Invalid first; valid once the proxy has sent the validator's error back."""
    last = rec.query[-1]["content"]
    if "That answer cannot be used" in last:
        return [text("Sorry, fixed:\n"), text(GOOD), done()]
    return [text("Here you go:\n"), text(BAD), done()]


@pytest.fixture(autouse=True)
def bots(fake_poe: FakePoe) -> None:
    for name, steps in ANSWERS.items():
        fake_poe.script(f"json-{name}", [*steps, done()])
    fake_poe.script("json-repair", repairing)
    fake_poe.script("json-never", [text("I would rather write a poem."), done()])


@pytest.mark.parametrize("bot", sorted(ANSWERS))
async def test_chat_parse(sdk: openai.AsyncOpenAI, fake_poe: FakePoe, bot: str) -> None:
    reply = await sdk.chat.completions.parse(model=f"json-{bot}", messages=MESSAGES,
                                             response_format=City)
    msg = reply.choices[0].message
    assert msg.parsed == City(name="Paris", population=2102650)
    assert msg.content == GOOD  # exactly the JSON, nothing around it
    # The answer's tokens are counted (the stage that held it back did not hide it).
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    prompt = fake_poe.last.query[-1]["content"]  # type: ignore[union-attr]
    assert prompt.startswith("Largest city of France?") and '"population"' in prompt
    if bot == "thinking":
        assert msg.model_extra and msg.model_extra["reasoning_content"] == "The user wants JSON."


@pytest.mark.parametrize("bot", sorted(ANSWERS))
async def test_chat_stream_helper(sdk: openai.AsyncOpenAI, bot: str) -> None:
    async with sdk.chat.completions.stream(model=f"json-{bot}", messages=MESSAGES,
                                           response_format=City) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.parsed == City(name="Paris", population=2102650)


@pytest.mark.parametrize("bot", sorted(ANSWERS))
async def test_streamed_content_is_exactly_the_json(proxy: Proxy, bot: str) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": f"json-{bot}", "messages": MESSAGES, "stream": True,
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "city", "schema": City.model_json_schema()}}})
    payloads = parse_sse(await resp.read())
    assert stream_text(payloads) == GOOD
    assert payloads[-2]["choices"][0]["finish_reason"] == "stop"
    assert resp.headers["x-structured-output"] == "instructed"


async def test_repair_round(sdk: openai.AsyncOpenAI, fake_poe: FakePoe, proxy: Proxy) -> None:
    raw = await sdk.chat.completions.with_raw_response.parse(
        model="json-repair", messages=MESSAGES, response_format=City)
    reply = raw.parse()
    assert reply.choices[0].message.parsed == City(name="Paris", population=2102650)
    assert raw.headers["x-structured-output"] == "instructed, repaired"
    assert len(fake_poe.requests) == 2
    second = fake_poe.requests[-1]
    assert second.query[-2] == {"role": "bot", "content": "Here you go:\n" + BAD,
                                "content_type": "text/markdown"}
    assert "'lots' is not of type 'integer'" in second.query[-1]["content"]
    single = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "json-prose", "messages": MESSAGES,
        "response_format": {"type": "json_object"}})
    # Usage counts both Poe queries of the repaired answer.
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > (await single.json())["usage"]["prompt_tokens"] * 2


async def test_repair_round_in_a_stream(proxy: Proxy, fake_poe: FakePoe) -> None:
    """Nothing of the invalid answer was sent (no JSON line), so the stream can repair."""
    fake_poe.script("json-repair-inline", lambda rec: (
        [text("Fixed: " + GOOD), done()]
        if "That answer cannot be used" in rec.query[-1]["content"]
        else [text("It is Paris, about two million people."), done()]))
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "json-repair-inline", "messages": MESSAGES, "stream": True,
        "response_format": {"type": "json_object"}})
    assert stream_text(parse_sse(await resp.read())) == GOOD
    assert len(fake_poe.requests) == 2


@pytest.mark.parametrize("stream", [False, True])
async def test_never_valid_is_an_error_with_the_answer(proxy: Proxy, fake_poe: FakePoe,
                                                       stream: bool) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "json-never", "messages": MESSAGES, "stream": stream,
        "response_format": {"type": "json_object"}})
    if not stream:
        err = await assert_openai_error(resp, 422, "invalid_response_format",
                                        "structured_output_failed")
        assert resp.headers["x-should-retry"] == "false"
    else:
        payloads = parse_sse(await resp.read())
        err = payloads[-2]["error"]
        assert err["code"] == "structured_output_failed"
    assert "I would rather write a poem." in err["message"]
    assert len(fake_poe.requests) == 2  # one repair round (STRUCTURED_OUTPUT_RETRIES=1)


async def test_invalid_answer_after_json_was_streamed_ends_with_an_error(
        proxy: Proxy, fake_poe: FakePoe) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "json-repair", "messages": MESSAGES, "stream": True,
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "city", "schema": City.model_json_schema()}}})
    payloads = parse_sse(await resp.read())
    assert stream_text(payloads[:-2]) == BAD  # sent as produced; it cannot be taken back
    assert payloads[-2]["error"]["code"] == "structured_output_failed"
    assert payloads[-1] == "[DONE]" and len(fake_poe.requests) == 1


async def test_buffer_mode_sends_only_a_validated_document(make_proxy: Any,
                                                           fake_poe: FakePoe) -> None:
    proxy = await make_proxy(structured_stream="buffer")
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "json-repair", "messages": MESSAGES, "stream": True,
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "city", "schema": City.model_json_schema()}}})
    payloads = parse_sse(await resp.read())
    contents = [p["choices"][0]["delta"].get("content") for p in payloads
                if isinstance(p, dict) and p.get("choices")]
    assert [c for c in contents if c] == [GOOD]  # one validated document
    assert len(fake_poe.requests) == 2


async def test_responses_parse(sdk: openai.AsyncOpenAI) -> None:
    for bot in ("json-fenced", "json-prose"):
        resp = await sdk.responses.parse(model=bot, input="Largest city of France?",
                                         text_format=City)
        assert resp.output_parsed == City(name="Paris", population=2102650)
        assert resp.output_text == GOOD
    async with sdk.responses.stream(model="json-fenced", input="Largest city of France?",
                                    text_format=City) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    assert final.output_parsed == City(name="Paris", population=2102650)
    # Streamed as produced (the JSON alone, no fence), one delta per network read.
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == GOOD


async def test_responses_stream_that_cannot_be_repaired_fails(proxy: Proxy) -> None:
    resp = await proxy.post("/v1/responses", headers=AUTH, json={
        "model": "json-repair", "input": "Largest city of France?", "stream": True,
        "text": {"format": {"type": "json_schema", "name": "city",
                            "schema": City.model_json_schema()}}})
    frames = [json.loads(line[6:]) for line in (await resp.text()).splitlines()
              if line.startswith("data: ")]
    assert frames[-1]["type"] == "response.failed"
    assert frames[-1]["response"]["error"]["code"] == "structured_output_failed"


async def test_json_object_mode(sdk: openai.AsyncOpenAI) -> None:
    reply = await sdk.chat.completions.create(model="json-fenced", messages=MESSAGES,
                                              response_format={"type": "json_object"})
    assert json.loads(reply.choices[0].message.content or "") == json.loads(GOOD)


async def test_tools_still_work_with_a_format(sdk: openai.AsyncOpenAI) -> None:
    reply = await sdk.chat.completions.create(
        model="scenario-tools-native", messages=MESSAGES,
        response_format={"type": "json_object"},
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {
            "type": "object", "properties": {"location": {"type": "string"}}}}}])
    assert reply.choices[0].finish_reason == "tool_calls"
    assert reply.choices[0].message.tool_calls[0].function.name == "lookup"  # type: ignore[index]


async def test_native_parameter_is_used_when_the_bot_has_one(proxy: Proxy,
                                                             fake_poe: FakePoe) -> None:
    fake_poe.models.append({**fake_poe.models[0], "id": "json-native", "parameters": [
        {"name": "response_format", "schema": {"type": "object"}}]})
    fake_poe.script("json-native", [text(GOOD), done()])
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "json-native", "messages": MESSAGES,
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "city", "schema": City.model_json_schema()}}})
    assert resp.status == 200 and resp.headers["x-structured-output"] == "native"
    sent = fake_poe.last.query[-1]  # type: ignore[union-attr]
    assert sent["content"] == "Largest city of France?"
    assert sent["parameters"]["response_format"]["json_schema"]["name"] == "city"


@pytest.mark.parametrize(("fmt", "param"), [
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nope"}}},
     "response_format.json_schema.schema"),
    ({"type": "json_schema", "json_schema": {"name": "bad name!", "schema": {}}},
     "response_format.json_schema.name"),
    ({"type": "xml"}, "response_format.type"),
])
async def test_invalid_formats_are_400(proxy: Proxy, fake_poe: FakePoe, fmt: Any,
                                       param: str) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "json-prose", "messages": MESSAGES, "response_format": fmt})
    await assert_openai_error(resp, 400, "invalid_request_error", param=param)
    assert fake_poe.requests == []
