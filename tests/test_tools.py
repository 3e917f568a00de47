"""Tool calls through the proxy, with the official SDK: native (json events) and XML modes."""

from __future__ import annotations

import json
from typing import Any

import openai
import pydantic
import pytest
from aiohttp.test_utils import TestClient

from poe2openai.registry import ModelOptions
from poe2openai.tokenizer import TOKENIZER
from tests.fake_poe import FakePoe, Received, done, hang, text
from tests.helpers import AUTH, parse_sse
from tests.model_options import use_options

NATIVE = "scenario-tools-native"
PARALLEL = "scenario-tools-parallel"

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Current weather for a location.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "days": {"type": "integer"},
                           "metric": {"type": "boolean"}},
            "required": ["location"],
        },
    },
}
TIME: Any = {"type": "function", "function": {"name": "get_time"}}  # B13: bare minimum
QUESTION: Any = [{"role": "user", "content": "What is the weather in Paris?"}]


class GetCurrentWeather(pydantic.BaseModel):
    location: str


# -- native -------------------------------------------------------------------------------

async def test_native_non_stream(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    resp = await sdk.chat.completions.create(model=NATIVE, messages=QUESTION,
                                             tools=[WEATHER, TIME])
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].id == "call_fake_1" and calls[0].type == "function"
    assert calls[0].function.name == "get_current_weather"
    assert json.loads(calls[0].function.arguments) == {"location": "Paris"}
    # Poe's own usage chunk is reported as is.
    assert resp.usage is not None and (resp.usage.prompt_tokens, resp.usage.completion_tokens) \
        == (10, 5)
    sent = fake_poe.last
    assert sent is not None and sent.tools is not None
    assert [t["function"]["name"] for t in sent.tools] == ["get_current_weather", "get_time"]
    assert sent.tools[1]["function"]["parameters"] == {"type": "object", "properties": {}}


async def test_native_stream_chunks(proxy: TestClient[Any, Any]) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": PARALLEL, "messages": QUESTION, "tools": [WEATHER, TIME], "stream": True})
    payloads = parse_sse(await resp.read())
    assert payloads[-1] == "[DONE]"
    chunks = payloads[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    deltas = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    firsts = [d for d in deltas if "id" in d]
    assert [(d["index"], d["id"], d["type"], d["function"]["name"], d["function"]["arguments"])
            for d in firsts] == [(0, "call_fake_1", "function", "get_current_weather", ""),
                                 (1, "call_fake_2", "function", "get_time", "")]
    args: dict[int, str] = {}
    for d in deltas:
        assert set(d) <= {"index", "id", "type", "function"}
        args[d["index"]] = args.get(d["index"], "") + d["function"]["arguments"]
    assert {i: json.loads(a) for i, a in args.items()} == {0: {"location": "Paris"},
                                                           1: {"location": "Tokyo"}}
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finishes[-1] == "tool_calls" and all(f is None for f in finishes[:-1])
    assert not any("usage" in c and c["usage"] for c in chunks)  # not asked for


async def test_sdk_low_level_chunk_loop(sdk: openai.AsyncOpenAI, proxy: TestClient[Any, Any],
                                        fake_poe: FakePoe) -> None:
    """The cookbook loop: accumulate tool_calls by index from raw SDK chunks (both modes)."""
    use_options(proxy, {"XmlBot": ModelOptions(tool_mode="xml")})
    fake_poe.script("XmlBot", xml_bot, split="random")
    for model, expected in [(PARALLEL, {0: ("get_current_weather", {"location": "Paris"}),
                                        1: ("get_time", {"location": "Tokyo"})}),
                            ("XmlBot", {0: ("get_current_weather",
                                            {"location": "Paris", "days": 3, "metric": True})})]:
        stream = await sdk.chat.completions.create(model=model, messages=QUESTION,
                                                   tools=[WEATHER, TIME], stream=True)
        calls: dict[int, dict[str, str]] = {}
        finish = None
        async for chunk in stream:
            choice = chunk.choices[0]
            for tc in choice.delta.tool_calls or []:
                call = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                if tc.id:
                    assert not call["id"]  # the id comes once, on the first delta
                    call["id"] = tc.id
                if tc.function and tc.function.name:
                    call["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    call["arguments"] += tc.function.arguments
            finish = choice.finish_reason or finish
        assert finish == "tool_calls"
        assert {i: (c["name"], json.loads(c["arguments"])) for i, c in calls.items()} == expected
        assert all(c["id"].startswith("call_") for c in calls.values())


async def test_sdk_stream_helper_accumulates_tool_calls(sdk: openai.AsyncOpenAI) -> None:
    tool = openai.pydantic_function_tool(GetCurrentWeather)
    async with sdk.chat.completions.stream(model=NATIVE, messages=QUESTION,
                                           tools=[tool]) as stream:
        events = [event.type async for event in stream]
        final = await stream.get_final_completion()
    assert "tool_calls.function.arguments.done" in events
    msg = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert msg.tool_calls is not None and len(msg.tool_calls) == 1
    assert msg.tool_calls[0].function.parsed_arguments == GetCurrentWeather(location="Paris")


async def test_sdk_parse_with_strict_tools(sdk: openai.AsyncOpenAI) -> None:
    tool = openai.pydantic_function_tool(GetCurrentWeather)
    resp = await sdk.chat.completions.parse(model=NATIVE, messages=QUESTION, tools=[tool])
    calls = resp.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.parsed_arguments == GetCurrentWeather(location="Paris")


async def test_sdk_parse_with_a_response_format(sdk: openai.AsyncOpenAI,
                                                fake_poe: FakePoe) -> None:
    fake_poe.script("Jsonbot", [text('{"location": '), text('"Oslo"}'), done()])
    resp = await sdk.chat.completions.parse(model="Jsonbot", messages=QUESTION,
                                            response_format=GetCurrentWeather)
    assert resp.choices[0].message.parsed == GetCurrentWeather(location="Oslo")


async def test_parallel_tool_calls_false_keeps_one_call(sdk: openai.AsyncOpenAI) -> None:
    resp = await sdk.chat.completions.create(model=PARALLEL, messages=QUESTION,
                                             tools=[WEATHER, TIME], parallel_tool_calls=False)
    calls = resp.choices[0].message.tool_calls
    assert calls is not None and [c.id for c in calls] == ["call_fake_1"]


async def test_tool_choice_none_sends_no_tools(sdk: openai.AsyncOpenAI,
                                               fake_poe: FakePoe) -> None:
    resp = await sdk.chat.completions.create(model=NATIVE, messages=QUESTION, tools=[WEATHER],
                                             tool_choice="none")
    assert resp.choices[0].message.content == "No tools were offered."
    assert fake_poe.last is not None and fake_poe.last.tools is None


async def test_json_content_deltas_are_text(sdk: openai.AsyncOpenAI) -> None:
    resp = await sdk.chat.completions.create(model="scenario-tools-json-content",
                                             messages=QUESTION, tools=[WEATHER])
    assert resp.choices[0].message.content == "The weather is sunny."
    assert resp.choices[0].finish_reason == "stop" and not resp.choices[0].message.tool_calls


async def test_bad_tools_are_400(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        await sdk.chat.completions.create(
            model=NATIVE, messages=QUESTION, tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "nope"}})
    assert err.value.body is not None and err.value.body["param"] == "tool_choice"  # type: ignore[index]


async def agent_loop(sdk: openai.AsyncOpenAI, model: str, tools: list[Any],
                     run_tool: Any, *, stream: bool) -> tuple[list[Any], str]:
    """A minimal agent: call the model until it answers in text, running its tools."""
    messages: list[Any] = list(QUESTION)
    for _ in range(4):
        if stream:
            async with sdk.chat.completions.stream(model=model, messages=messages,
                                                   tools=tools) as s:
                async for _event in s:
                    pass
                resp = await s.get_final_completion()
        else:
            resp = await sdk.chat.completions.create(model=model, messages=messages,
                                                     tools=tools)
        msg = resp.choices[0].message
        if not msg.tool_calls:
            assert resp.choices[0].finish_reason == "stop"
            return messages, msg.content or ""
        assert resp.choices[0].finish_reason == "tool_calls"
        messages.append({"role": "assistant", "content": msg.content, "tool_calls": [
            {"id": c.id, "type": "function",
             "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in msg.tool_calls]})
        for c in msg.tool_calls:
            messages.append({"role": "tool", "tool_call_id": c.id,
                             "content": run_tool(c.function.name,
                                                 json.loads(c.function.arguments))})
    raise AssertionError("the agent never got an answer")


@pytest.mark.parametrize("stream", [False, True])
async def test_native_agent_loop(sdk: openai.AsyncOpenAI, fake_poe: FakePoe,
                                 stream: bool) -> None:
    seen = []

    def run_tool(name: str, args: dict[str, Any]) -> str:
        seen.append((name, args))
        return "18C\nand \"sunny\""

    _, answer = await agent_loop(sdk, NATIVE, [WEATHER], run_tool, stream=stream)
    assert seen == [("get_current_weather", {"location": "Paris"})]
    assert answer == 'Tool result: 18C\nand "sunny"'
    second = fake_poe.queries[-1]
    # The last round goes in Poe's top-level fields, with the name looked up (B7: no escaping).
    assert second.body is not None and second.body["tool_calls"][0]["id"] == "call_fake_1"
    assert second.tool_results == [{"role": "tool", "name": "get_current_weather",
                                    "tool_call_id": "call_fake_1",
                                    "content": '18C\nand "sunny"'}]
    assert [m["role"] for m in second.query] == ["user"]


# -- XML -----------------------------------------------------------------------------------

def xml_bot(received: Received) -> list[Any]:
    """Answers with an XML tool call split across events, or with text once it has results."""
    last = received.last_user_message or {}
    content = last.get("content", "")
    if "<tool_result name=" in content:
        result = content.split('tool_call_id="')[1].split(">\n", 1)[1].split("\n</tool_result>")[0]
        return [text("It is "), text(result + " in Paris."), done()]
    assert "# Tools" in content and '"days":{"type":"integer"}' in content
    return [
        text("Let me check.\n\n<tool"),
        text('_call>\n<invoke name="get_current_weather">\n<parameter name="location">Par'),
        text('is</parameter>\n<parameter name="days">3</parameter>\n<parameter name="metr'),
        text('ic">true</parameter>\n</invoke>\n</tool_'),
        text("call>\nThe weather is probably 25C (I made that up)."),
        done(),
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_xml_agent_loop(sdk: openai.AsyncOpenAI, proxy: TestClient[Any, Any],
                              fake_poe: FakePoe, stream: bool) -> None:
    use_options(proxy, {"XmlBot": ModelOptions(tool_mode="xml")})
    fake_poe.script("XmlBot", xml_bot, split="random")
    seen = []

    def run_tool(name: str, args: dict[str, Any]) -> str:
        seen.append((name, args))
        return "18C"

    messages, answer = await agent_loop(sdk, "XmlBot", [WEATHER, TIME], run_tool, stream=stream)
    assert seen == [("get_current_weather", {"location": "Paris", "days": 3, "metric": True})]
    assert answer == "It is 18C in Paris."
    assert messages[1]["content"] == "Let me check."  # the text before the call, nothing leaked
    first, second = fake_poe.queries[-2:]
    assert first.tools is None and second.tools is None  # never sent natively
    bot = second.query[-2]
    assert bot["role"] == "bot" and bot["content"].startswith("Let me check.\n\n<tool_call>\n")
    assert '<parameter name="days">3</parameter>' in bot["content"]  # B23: same format


async def test_xml_stream_never_leaks_markup(proxy: TestClient[Any, Any],
                                             fake_poe: FakePoe) -> None:
    use_options(proxy, {"XmlBot": ModelOptions(tool_mode="xml")})
    fake_poe.script("XmlBot", xml_bot, split=1)
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "XmlBot", "messages": QUESTION, "tools": [WEATHER], "stream": True})
    payloads = parse_sse(await resp.read())
    content = "".join(p["choices"][0]["delta"].get("content") or ""
                      for p in payloads[:-1] if p["choices"])
    assert content == "Let me check."
    calls = [tc for p in payloads[:-1] for tc in p["choices"][0]["delta"].get("tool_calls") or []]
    assert calls[0]["index"] == 0 and calls[0]["id"].startswith("call_")
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == \
        {"location": "Paris", "days": 3, "metric": True}
    assert payloads[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_xml_stops_reading_after_the_call(proxy: TestClient[Any, Any],
                                                fake_poe: FakePoe) -> None:
    """B5: made-up text after the call is dropped and Poe's answer is left at once."""
    use_options(proxy, {"XmlBot": ModelOptions(tool_mode="xml")})
    fake_poe.script("XmlBot", [
        text('<tool_call><invoke name="get_time"></invoke></tool_call>'),
        text("\nThe time is 12:00."), hang()])
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "XmlBot", "messages": QUESTION, "tools": [TIME]})
    body = await resp.json()
    msg = body["choices"][0]["message"]
    assert msg["content"] is None and body["choices"][0]["finish_reason"] == "tool_calls"
    assert msg["tool_calls"][0]["function"] == {"name": "get_time", "arguments": "{}"}
    # The call's name and arguments are what the answer cost (no text went out).
    assert body["usage"]["completion_tokens"] == TOKENIZER.count("get_time") + TOKENIZER.count("{}")
    assert fake_poe.last is not None and await fake_poe.last.wait_cancelled(2)


async def test_ids_are_unique_across_requests(sdk: openai.AsyncOpenAI, proxy: TestClient[Any, Any],
                                              fake_poe: FakePoe) -> None:
    """B4: ids are random, not a counter that restarts."""
    use_options(proxy, {"XmlBot": ModelOptions(tool_mode="xml")})
    fake_poe.script("XmlBot", [text('<tool_call><invoke name="get_time"></invoke></tool_call>'),
                               done()])
    ids = set()
    for _ in range(3):
        resp = await sdk.chat.completions.create(model="XmlBot", messages=QUESTION, tools=[TIME])
        calls = resp.choices[0].message.tool_calls
        assert calls is not None
        ids.add(calls[0].id)
    assert len(ids) == 3
