"""The Responses face (``/v1/responses``) through the proxy against the fake Poe: the official
SDK's create/stream helpers, tool loops, chaining, errors, and the raw event bytes."""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient

from tests.fake_poe import FakePoe, Received, done, json_event, text
from tests.helpers import AUTH, assert_openai_error

Proxy = TestClient[Any, Any]

WEATHER: Any = {"type": "function", "name": "get_weather", "description": "Weather.",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                               "required": ["location"]}}
PATCH_GRAMMAR = 'start: "*** Begin Patch" LF body "*** End Patch"'
APPLY_PATCH: Any = {"type": "custom", "name": "apply_patch", "description": "Edit files.",
                    "format": {"type": "grammar", "syntax": "lark", "definition": PATCH_GRAMMAR}}
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()


def parse_events(raw: bytes) -> list[dict[str, Any]]:
    """Every frame of a Responses stream; each must have ``event:`` equal to its ``type``."""
    text_ = raw.decode()
    assert text_.endswith("\n\n") and "\r" not in text_
    events = []
    for frame in text_.split("\n\n")[:-1]:
        lines = [ln for ln in frame.split("\n") if not ln.startswith(":")]
        if not lines:
            continue
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith(
            "data: "), frame
        data = json.loads(lines[1][6:])
        assert data["type"] == lines[0][7:], frame
        events.append(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


async def test_create_text(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    fake_poe.script("GPT-4o", [text("Hel"), text("lo!"), done()])
    resp = await sdk.responses.create(model="GPT-4o", input="Hi", instructions="Be brief.")
    assert resp.output_text == "Hello!"
    assert resp.status == "completed" and resp.model == "GPT-4o"
    assert resp.id.startswith("resp_") and resp.object == "response"
    assert resp.instructions == "Be brief." and resp.completed_at is not None
    assert [o.type for o in resp.output] == ["message"]
    assert resp.usage is not None and resp.usage.output_tokens > 0
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens
    query = fake_poe.last.query  # type: ignore[union-attr]
    assert [(m["role"], m["content"]) for m in query] == [("system", "Be brief."),
                                                          ("user", "Hi")]


async def test_stream_text(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    fake_poe.script("GPT-4o", [text("Hel"), text("lo!"), done()])
    async with sdk.responses.stream(model="GPT-4o", input="Hi") as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    kinds = [event.type for event in events]
    assert final.output_text == "Hello!" and final.status == "completed"
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    # One delta per network read: Poe's two events, if they came in one read, are one delta.
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Hello!" and 1 <= len(deltas) <= 2
    for name in ("response.output_item.added", "response.content_part.added",
                 "response.output_text.done", "response.content_part.done",
                 "response.output_item.done"):
        assert kinds.count(name) == 1, name


async def test_reasoning(sdk: openai.AsyncOpenAI) -> None:
    async with sdk.responses.stream(model="scenario-thinking", input="Why?",
                                    reasoning={"effort": "low", "summary": "auto"}) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert [o.type for o in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == "step one\nstep two"  # type: ignore[union-attr]
    assert final.output_text == "The answer is 42."
    assert "response.reasoning_summary_text.delta" in kinds
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens > 0
    assert final.usage.output_tokens > final.usage.output_tokens_details.reasoning_tokens
    plain = await sdk.responses.create(model="scenario-thinking", input="Why?")
    assert plain.output[0].summary[0].text == "step one\nstep two"  # type: ignore[union-attr]
    assert plain.output_text == "The answer is 42."


async def _run(sdk: openai.AsyncOpenAI, stream: bool, **kwargs: Any) -> Any:
    if not stream:
        return await sdk.responses.create(**kwargs)
    async with sdk.responses.stream(**kwargs) as s:
        async for _ in s:
            pass
        return await s.get_final_response()


@pytest.mark.parametrize("stream", [False, True])
async def test_function_tool_loop(sdk: openai.AsyncOpenAI, fake_poe: FakePoe,
                                  stream: bool) -> None:
    items: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await _run(sdk, stream, model="scenario-tools-native", input=items, tools=[WEATHER],
                       store=False)
    calls = [o for o in first.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"location": "Paris"}
    assert calls[0].call_id == "call_fake_1" and first.status == "completed"
    assert fake_poe.last.tools[0]["function"]["name"] == "get_weather"  # type: ignore[index,union-attr]
    items += [o.model_dump(exclude_none=True) for o in first.output]
    items.append({"type": "function_call_output", "call_id": calls[0].call_id,
                  "output": "18C and sunny"})
    second = await _run(sdk, stream, model="scenario-tools-native", input=items,
                        tools=[WEATHER], store=False)
    assert second.output_text == "Tool result: 18C and sunny"
    assert fake_poe.last.tool_results[0]["tool_call_id"] == "call_fake_1"  # type: ignore[index,union-attr]


def _patcher(rec: Received) -> list[Any]:
    """A bot that answers with one apply_patch call, then (with the result) a summary."""
    for msg in rec.query:
        if msg["role"] == "tool":
            return [text("Patched: " + json.loads(msg["content"])[0]["content"]), done()]
    if rec.body.get("tool_results"):
        return [text("Patched: " + rec.body["tool_results"][0]["content"]), done()]
    args = json.dumps({"input": PATCH})
    call = {"index": 0, "id": "call_p1", "type": "function",
            "function": {"name": "apply_patch", "arguments": args[:20]}}
    return [json_event({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}),
            json_event({"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": args[20:]}}]}}]}),
            json_event({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            done()]


@pytest.mark.parametrize("stream", [False, True])
async def test_custom_tool_loop(sdk: openai.AsyncOpenAI, fake_poe: FakePoe, stream: bool) -> None:
    fake_poe.script("patcher", _patcher)
    items: list[Any] = [{"role": "user", "content": "Add hello.txt"}]
    first = await _run(sdk, stream, model="patcher", input=items, tools=[APPLY_PATCH])
    offered = fake_poe.last.tools[0]["function"]  # type: ignore[index,union-attr]
    assert offered["name"] == "apply_patch" and PATCH_GRAMMAR in offered["description"]
    assert offered["parameters"]["properties"]["input"]["type"] == "string"
    calls = [o for o in first.output if o.type == "custom_tool_call"]
    assert len(calls) == 1 and calls[0].input == PATCH and calls[0].call_id == "call_p1"
    items += [o.model_dump(exclude_none=True) for o in first.output]
    items.append({"type": "custom_tool_call_output", "call_id": "call_p1", "output": "Done!"})
    second = await _run(sdk, stream, model="patcher", input=items, tools=[APPLY_PATCH])
    assert second.output_text == "Patched: Done!"
    sent = fake_poe.last.body  # type: ignore[union-attr]
    history = [m for m in sent["query"] if m.get("message_type") == "function_call"]
    calls_sent = history[0]["content"] if history else json.dumps(sent["tool_calls"])
    assert json.loads(json.loads(calls_sent)[0]["function"]["arguments"]) == {"input": PATCH}


async def test_custom_tool_stream_events(proxy: Proxy, fake_poe: FakePoe) -> None:
    fake_poe.script("patcher", _patcher)
    resp = await proxy.post("/v1/responses", headers=AUTH, json={
        "model": "patcher", "input": "go", "tools": [APPLY_PATCH], "stream": True})
    events = parse_events(await resp.read())
    kinds = [e["type"] for e in events]
    assert "response.custom_tool_call_input.delta" in kinds
    done_ = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    assert done_["input"] == PATCH
    item_done = next(e for e in events if e["type"] == "response.output_item.done")
    assert item_done["item"]["type"] == "custom_tool_call" and item_done["item"]["input"] == PATCH
    assert kinds[-1] == "response.completed"


async def test_image_input(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    resp = await sdk.responses.create(model="GPT-4o", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}]}])
    assert resp.status == "completed"
    assert len(fake_poe.uploads) == 1
    user = fake_poe.last.query[-1]  # type: ignore[union-attr]
    assert user["content"] == "What is this?" and len(user["attachments"]) == 1


async def test_previous_response_id(sdk: openai.AsyncOpenAI, fake_poe: FakePoe,
                                    proxy: Proxy) -> None:
    fake_poe.script("GPT-4o", [text("Paris."), done()])
    first = await sdk.responses.create(model="GPT-4o", input="Capital of France?",
                                       instructions="Short answers.")
    second = await sdk.responses.create(model="GPT-4o", input="And Italy?",
                                        previous_response_id=first.id)
    assert second.previous_response_id == first.id
    query = [(m["role"], m["content"]) for m in fake_poe.last.query]  # type: ignore[union-attr]
    assert query == [("system", "Short answers."), ("user", "Capital of France?"),
                     ("bot", "Paris."), ("user", "And Italy?")]
    got = await sdk.responses.retrieve(first.id)
    assert got.id == first.id and got.output_text == "Paris."
    # Another key sees nothing.
    other = await proxy.get(f"/v1/responses/{first.id}", headers={"Authorization": "Bearer x"})
    await assert_openai_error(other, 404)
    await sdk.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(first.id)
    count = len(fake_poe.requests)
    with pytest.raises(openai.NotFoundError) as err:
        await sdk.responses.create(model="GPT-4o", input="x", previous_response_id=first.id)
    assert first.id in str(err.value) and len(fake_poe.requests) == count


async def test_store_false_keeps_nothing(sdk: openai.AsyncOpenAI) -> None:
    resp = await sdk.responses.create(model="GPT-4o", input="Hi", store=False)
    assert resp.store is False
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(resp.id)


@pytest.mark.parametrize(("scenario", "exc"), [
    ("no-points-text", openai.RateLimitError),
    ("invalid-token-text", openai.AuthenticationError),
    ("unknown-bot-text", openai.NotFoundError),
    ("error-no-retry-user_message_too_long", openai.BadRequestError),
    ("http-500", openai.InternalServerError),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_errors_raise_sdk_exceptions(sdk: openai.AsyncOpenAI, scenario: str,
                                           exc: type[Exception], stream: bool) -> None:
    with pytest.raises(exc):
        await _run(sdk, stream, model=f"scenario-{scenario}", input="Hi")


async def test_error_mid_stream_is_failed(proxy: Proxy) -> None:
    resp = await proxy.post("/v1/responses", headers=AUTH, json={
        "model": "scenario-error-mid", "input": "Hi", "stream": True})
    assert resp.status == 200
    events = parse_events(await resp.read())
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "response.failed" and "response.completed" not in kinds
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["message"]
    delta = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert delta == "Partial answer"


async def test_stream_bytes_and_schema_fields(proxy: Proxy) -> None:
    resp = await proxy.post("/v1/responses", headers=AUTH, json={
        "model": "scenario-thinking", "input": "Hi", "stream": True})
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    events = parse_events(await resp.read())
    final = events[-1]["response"]
    for field in ("id", "object", "created_at", "status", "completed_at", "error",
                  "incomplete_details", "instructions", "max_output_tokens", "model", "output",
                  "parallel_tool_calls", "previous_response_id", "reasoning", "service_tier",
                  "store", "temperature", "text", "tool_choice", "tools", "top_p",
                  "truncation", "usage", "metadata", "background"):
        assert field in final, field
    message = final["output"][-1]
    assert message["content"][0]["logprobs"] == [] and message["content"][0]["annotations"] == []
    # Deltas only inside an added item, every added item done once.
    open_items: set[str] = set()
    for e in events:
        if e["type"] == "response.output_item.added":
            open_items.add(e["item"]["id"])
        elif e["type"] == "response.output_item.done":
            open_items.remove(e["item"]["id"])
        elif "item_id" in e:
            assert e["item_id"] in open_items, e
    assert not open_items


async def test_codex_shaped_request(proxy: Proxy, fake_poe: FakePoe) -> None:
    """What Codex sends: developer messages, ids on items, namespace and built-in tools."""
    body = {
        "model": "scenario-tools-native", "stream": True, "store": False,
        "tool_choice": "auto", "parallel_tool_calls": True, "reasoning": {"summary": "auto"},
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "s1",
        "client_metadata": {"turn_id": "t1"}, "text": {"verbosity": "low"},
        "input": [
            {"type": "message", "id": "m1", "role": "developer",
             "content": [{"type": "input_text", "text": "You are Codex."}]},
            {"type": "message", "id": "m2", "role": "user",
             "content": [{"type": "input_text", "text": "List files"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "xyz"},
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "strict": False,
             "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}},
                            "required": ["cmd"], "additionalProperties": False}},
            {"type": "namespace", "name": "multi_agent_v1", "description": "Agents.",
             "tools": [{"type": "function", "name": "close_agent", "strict": False,
                        "parameters": {"type": "object", "properties": {}}}]},
            {"type": "web_search", "external_web_access": False},
            {"type": "tool_search", "execution": "client"},
        ],
    }
    resp = await proxy.post("/v1/responses", headers=AUTH, json=body)
    assert resp.status == 200, await resp.text()
    events = parse_events(await resp.read())
    assert events[-1]["type"] == "response.completed"
    sent = fake_poe.last
    assert sent is not None
    assert [t["function"]["name"] for t in sent.tools] == [  # type: ignore[union-attr]
        "exec_command", "multi_agent_v1__close_agent"]
    assert sent.query[0] == {"role": "system", "content": "You are Codex.",
                             "content_type": "text/markdown"}
    dropped = resp.headers["x-dropped-params"]
    for name in ("client_metadata", "include", "prompt_cache_key", "tools[2]", "tools[3]"):
        assert name in dropped
    assert "web_search" not in (sent.body.get("query")[-1].get("parameters") or {})  # type: ignore[union-attr]


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m", "input": [{"role": "user", "content": "x"}, {"type": "hologram"}]},
     "input[1].type"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": 5}]}]},
     "input[0].content[0].text"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "vr"}]}]},
     "input[0].content[0].type"),
    ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    # A type that is not a string is refused, not taken for a message because of its role.
    ({"model": "m", "input": [{"type": ["message"], "role": "user", "content": "x"}]},
     "input[0].type"),
    ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"input": "x"}, "model"),
    ({"model": "m", "input": "x", "temperature": 7}, "temperature"),
])
async def test_malformed_requests(proxy: Proxy, fake_poe: FakePoe, body: dict[str, Any],
                                  param: str) -> None:
    resp = await proxy.post("/v1/responses", headers=AUTH, json=body)
    await assert_openai_error(resp, 400, "invalid_request_error", param=param)
    assert fake_poe.requests == []


@pytest.mark.parametrize("stream", [False, True])
async def test_namespace_tool_call_comes_back_with_its_namespace(
        sdk: openai.AsyncOpenAI, fake_poe: FakePoe, stream: bool) -> None:
    """Codex routes a namespaced function only by ``name`` + ``namespace``."""
    tools: Any = [{"type": "namespace", "name": "agents", "description": "Agents.",
                   "tools": [{"type": "function", "name": "close_agent",
                              "parameters": {"type": "object", "properties": {}}}]}]
    first = await _run(sdk, stream, model="scenario-tools-native", input="close it",
                       tools=tools, store=False)
    call = first.output[0].model_dump()
    assert (call["type"], call["name"], call["namespace"]) == (
        "function_call", "close_agent", "agents")
    assert fake_poe.last.tools[0]["function"]["name"] == "agents__close_agent"  # type: ignore[index,union-attr]
    items: Any = [{"role": "user", "content": "close it"}, call,
                                   {"type": "function_call_output", "call_id": call["call_id"],
                                    "output": "closed"}]
    second = await _run(sdk, stream, model="scenario-tools-native", input=items, tools=tools,
                        store=False)
    assert second.output_text == "Tool result: closed"
    sent_calls = fake_poe.last.body["tool_calls"]  # type: ignore[index,union-attr]
    assert sent_calls[0]["function"]["name"] == "agents__close_agent"


@pytest.mark.parametrize(("access", "searches"), [(None, True), (True, True), (False, False)])
async def test_web_search_tool_turns_on_the_bots_parameter(
        proxy: Proxy, fake_poe: FakePoe, access: bool | None, searches: bool) -> None:
    """gpt-5.2 publishes a web_search parameter; a cached-only search tool does not use it."""
    tool: Any = {"type": "web_search"}
    if access is not None:
        tool["external_web_access"] = access
    resp = await proxy.post("/v1/responses", headers=AUTH, json={
        "model": "gpt-5.2", "input": "News?", "tools": [tool]})
    assert resp.status == 200
    params = fake_poe.last.query[-1].get("parameters") or {}  # type: ignore[union-attr]
    assert params.get("web_search") is (True if searches else None)
    assert ("tools[0]" in resp.headers.get("x-dropped-params", "")) is not searches
