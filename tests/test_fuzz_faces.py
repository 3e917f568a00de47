"""Property-based fuzzing of the Responses and Anthropic Messages request parsers through the
real server (the Chat face has its own, richer strategy in ``test_fuzz_requests.py``; the
checks after each example are the same, see ``tests/fuzzing.py``)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import API_KEY
from tests.fake_poe import FakePoe
from tests.fuzzing import (
    FUZZ,
    Face,
    deep,
    deep_values,
    huge_numbers,
    json_values,
    mutated,
    optional,
    slot,
    slots,
    weighted,
    weird,
)
from tests.hardening import PNG_URL

MODELS = ["GPT-4o", "Claude-Sonnet-4.5", "gpt-5.2", "Some-Private-Bot", "scenario-tools-native"]
PNG_B64 = PNG_URL.split(",", 1)[1]
_TEXT = st.sampled_from(["Hi", "", "What is the weather?", "Ünïcode 漢字 😀"])
_DEEP = weighted((3, deep_values()), (1, weird()))
_BIG = weighted((3, huge_numbers()), (1, weird()))
_SCHEMA: Any = {"type": "object", "properties": {"city": {"type": "string"}}}


def anthropic_error(body: Any) -> None:
    assert set(body) == {"type", "error"} and body["type"] == "error", body
    assert isinstance(body["error"]["type"], str) and isinstance(body["error"]["message"], str)


# --- Responses ----------------------------------------------------------------------------

def _responses_item() -> st.SearchStrategy[Any]:
    part = weighted(
        (4, st.fixed_dictionaries({"type": st.just("input_text"), "text": _TEXT})),
        (1, st.fixed_dictionaries({"type": st.just("input_image"),
                                   "image_url": st.sampled_from([PNG_URL, "https://x.poecdn.net/a.png"])})),
        (1, st.fixed_dictionaries({"type": st.just("output_text"), "text": _TEXT})))
    message = st.fixed_dictionaries({
        "role": st.sampled_from(["user", "developer", "system", "assistant"]),
        "content": st.one_of(_TEXT, st.lists(part, min_size=1, max_size=3))},
        optional={"type": st.just("message"), "id": st.just("m1")})
    call = st.fixed_dictionaries({"type": st.just("function_call"), "call_id": st.just("c1"),
                                  "name": st.just("get_weather"),
                                  "arguments": st.sampled_from(['{"city": "Paris"}', ""])},
                                 optional={"namespace": st.just("ns")})
    custom = st.fixed_dictionaries({"type": st.just("custom_tool_call"), "call_id": st.just("c2"),
                                    "name": st.just("apply_patch"), "input": _TEXT})
    output = st.fixed_dictionaries({
        "type": st.sampled_from(["function_call_output", "custom_tool_call_output"]),
        "call_id": st.sampled_from(["c1", "c2"]), "output": _TEXT})
    reasoning = st.just({"type": "reasoning", "id": "rs_1", "summary": [],
                         "encrypted_content": "x"})
    return weighted((5, message), (1, call), (1, custom), (1, output), (1, reasoning))


def _responses_tools() -> st.SearchStrategy[Any]:
    fn = st.fixed_dictionaries({"type": st.just("function"), "name": st.just("get_weather"),
                                "parameters": st.just(_SCHEMA)})
    custom = st.just({"type": "custom", "name": "apply_patch",
                      "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}})
    space = st.just({"type": "namespace", "name": "ns", "tools": [
        {"type": "function", "name": "close", "parameters": {"type": "object"}}]})
    builtin = st.sampled_from([{"type": "web_search"}, {"type": "tool_search"},
                               {"type": "web_search", "external_web_access": False}])
    return st.lists(weighted((3, fn), (1, custom), (1, space), (1, builtin)), max_size=3,
                    unique_by=lambda t: (t["type"], t.get("name")))


def responses_bodies() -> st.SearchStrategy[Any]:
    fields: dict[str, st.SearchStrategy[Any]] = {
        "instructions": _TEXT, "stream": st.booleans(), "store": st.booleans(),
        "temperature": st.floats(0, 2), "max_output_tokens": st.integers(1, 10**5),
        "reasoning": optional({"effort": st.sampled_from(["low", "high"]),
                               "summary": st.just("auto")}),
        "text": optional({"verbosity": st.just("low"), "format": st.sampled_from([
            {"type": "text"}, {"type": "json_object"},
            {"type": "json_schema", "name": "city", "schema": _SCHEMA}])}),
        "tools": _responses_tools(), "tool_choice": st.sampled_from(["auto", "required", "none"]),
        "parallel_tool_calls": st.booleans(), "include": st.just(["reasoning.encrypted_content"]),
        "prompt_cache_key": st.just("k"), "metadata": st.just({"a": "b"}),
        "custom_flag": json_values(4),
    }
    return st.builds(lambda model, items, extra: {"model": model, "input": items, **extra},
                     st.sampled_from(MODELS),
                     st.one_of(_TEXT.filter(bool), st.lists(_responses_item(), min_size=1,
                                                            max_size=4)),
                     optional(fields))


RESPONSES_SLOTS = slots(
    slot("input", "*", "role", weight=2), slot("input", "*", "type", weight=2),
    slot("input", "*", "content", "*", "type", weight=2), slot("input", "*", "content"),
    slot("input", "*", "content", "*", "text"), slot("input", "*", "call_id"),
    slot("input", "*", "arguments", values=_DEEP), slot("tools", "*", "type"),
    slot("tools", "*", "parameters", values=_DEEP, weight=2), slot("tools", "*"),
    slot("text", "format"), slot("reasoning"), slot("tool_choice"), slot("custom_flag",
                                                                         values=_DEEP),
    slot("?"), slot("previous_response_id"),
)
_IN = [{"role": "user", "content": "Hi"}]
RESPONSES = Face(
    "/v1/responses", mutated(responses_bodies(), RESPONSES_SLOTS),
    normal={"model": "GPT-4o", "input": "Hi"},
    seeds=[
        {"model": "GPT-4o", "input": [{"role": ["user"], "content": "Hi"}]},
        {"model": "GPT-4o", "input": [{"role": "user", "content": [{"type": ["input_text"]}]}]},
        {"model": "GPT-4o", "input": [{"type": {"a": 1}}]},
        {"model": "GPT-4o", "input": _IN, "tools": [{"type": ["function"], "name": "f"}]},
        {"model": "GPT-4o", "input": _IN, "tools": [
            {"type": "function", "name": "f", "parameters": deep(300)}]},
        {"model": "GPT-4o", "input": _IN, "x\ny": 1},
        {"model": "Some-Private-Bot", "input": _IN, "reasoning": {"max_tokens": 1e20}},
        {"model": "GPT-4o", "input": _IN, "text": {"format": {
            "type": "json_schema", "name": "x", "schema": {"type": "nope"}}}},
        {"model": "GPT-4o", "input": _IN, "previous_response_id": "resp_nope"},
    ])


@FUZZ
@RESPONSES.seeded
@given(body=RESPONSES.bodies)
async def test_responses_survive_fuzzing(proxy: TestClient[Any, Any], fake_poe: FakePoe,
                                         body: Any) -> None:
    await RESPONSES.check(proxy, fake_poe, body)


# --- Messages -----------------------------------------------------------------------------

def _block() -> st.SearchStrategy[Any]:
    text = st.fixed_dictionaries({"type": st.just("text"), "text": _TEXT},
                                 optional={"cache_control": st.just({"type": "ephemeral"})})
    image = st.just({"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                  "data": PNG_B64}})
    doc = st.just({"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                                   "data": "notes"}})
    thinking = st.just({"type": "thinking", "thinking": "hm", "signature": ""})
    return weighted((5, text), (1, image), (1, doc), (1, thinking))


def _anthropic_message() -> st.SearchStrategy[Any]:
    plain = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"]),
                                   "content": st.one_of(_TEXT, st.lists(_block(), min_size=1,
                                                                        max_size=3))})
    use = st.just({"role": "assistant", "content": [
        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}}]})
    result = st.fixed_dictionaries({"role": st.just("user"), "content": st.just([
        {"type": "tool_result", "tool_use_id": "t1", "content": "18C"}])})
    return weighted((5, plain), (1, use), (1, result))


def messages_bodies() -> st.SearchStrategy[Any]:
    tool = st.just({"name": "get_weather", "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema", **_SCHEMA}})
    fields: dict[str, st.SearchStrategy[Any]] = {
        "system": st.one_of(_TEXT, st.lists(st.fixed_dictionaries(
            {"type": st.just("text"), "text": _TEXT}), max_size=2)),
        "stream": st.booleans(), "temperature": st.floats(0, 1),
        "stop_sequences": st.lists(_TEXT, max_size=2),
        "tools": st.lists(weighted((3, tool), (1, st.just(
            {"type": "web_search_20250305", "name": "web_search"}))), max_size=2,
            unique_by=lambda t: t["name"]),
        "tool_choice": st.sampled_from([{"type": "auto"}, {"type": "none"}]),
        "thinking": st.sampled_from([{"type": "adaptive"}, {"type": "disabled"},
                                     {"type": "enabled", "budget_tokens": 2048}]),
        "output_config": st.just({"effort": "high"}),
        "metadata": st.just({"user_id": "{\"a\": 1}"}),
        "custom_flag": json_values(4),
    }
    return st.builds(
        lambda model, messages, extra: {"model": model, "max_tokens": 100,
                                        "messages": messages, **extra},
        st.sampled_from(MODELS), st.lists(_anthropic_message(), min_size=1, max_size=4),
        optional(fields))


MESSAGES_SLOTS = slots(
    slot("messages", "*", "role", weight=2), slot("messages", "*", "content", weight=2),
    slot("messages", "*", "content", "*", "type", weight=2),
    slot("messages", "*", "content", "*", "source"), slot("messages", "*", "content", "*", "input",
                                                          values=_DEEP),
    slot("messages", "*", "content", "*"), slot("system"), slot("tools", "*"),
    slot("tools", "*", "input_schema", values=_DEEP, weight=2), slot("tool_choice"),
    slot("thinking", "budget_tokens", values=_BIG, weight=2), slot("max_tokens", values=_BIG),
    slot("output_config"), slot("custom_flag", values=_DEEP), slot("?"),
)
_USER = [{"role": "user", "content": "Hi"}]
MESSAGES = Face(
    "/v1/messages", mutated(messages_bodies(), MESSAGES_SLOTS),
    normal={"model": "GPT-4o", "max_tokens": 10, "messages": _USER},
    headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01"},
    error_envelope=anthropic_error,
    seeds=[
        {"model": "GPT-4o", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": ["text"], "text": "x"}]}]},
        {"model": "GPT-4o", "max_tokens": 5, "messages": [{"role": ["user"], "content": "x"}]},
        {"model": "GPT-4o", "max_tokens": 5, "messages": _USER, "tools": [
            {"type": ["custom"], "name": "f"}]},
        {"model": "GPT-4o", "max_tokens": 5, "messages": _USER, "tools": [
            {"name": "f", "input_schema": deep(300)}]},
        {"model": "GPT-4o", "max_tokens": 5, "messages": _USER,
         "thinking": {"type": "enabled", "budget_tokens": 1e300}},
        {"model": "GPT-4o", "max_tokens": 1e300, "messages": _USER},
        {"model": "GPT-4o", "max_tokens": 5, "messages": _USER, "x\ny": 1},
    ])


@FUZZ
@MESSAGES.seeded
@given(body=MESSAGES.bodies)
async def test_messages_survive_fuzzing(proxy: TestClient[Any, Any], fake_poe: FakePoe,
                                        body: Any) -> None:
    await MESSAGES.check(proxy, fake_poe, body)


# --- Images (JSON body) -------------------------------------------------------------------

def images_bodies() -> st.SearchStrategy[Any]:
    fields: dict[str, st.SearchStrategy[Any]] = {
        "n": st.integers(1, 3), "size": st.sampled_from(["1024x1024", "1792x1024", "auto"]),
        "quality": st.sampled_from(["standard", "hd", "auto"]),
        "response_format": st.sampled_from(["url", "b64_json"]),
        "style": st.just("vivid"), "background": st.just("transparent"),
        "output_format": st.sampled_from(["png", "jpeg"]), "user": _TEXT,
        "aspect_ratio": st.just("16:9"),
    }
    return st.builds(lambda model, prompt, extra: {"model": model, "prompt": prompt, **extra},
                     st.sampled_from(["scenario-media", "GPT-4o", "nano-banana"]),
                     _TEXT.filter(bool), optional(fields))


IMAGES = Face(
    "/v1/images/generations",
    mutated(images_bodies(), slots(slot("n", values=_BIG, weight=2), slot("size", weight=2),
                                   slot("prompt"), slot("model"), slot("response_format"),
                                   slot("?"))),
    normal={"model": "scenario-media", "prompt": "a cat"},
    seeds=[{"model": "scenario-media", "prompt": "a cat", "n": 1e300},
           {"model": "scenario-media", "prompt": "a cat", "size": ["1024x1024"]},
           {"model": "scenario-media", "prompt": "a cat", "x\ny": 1}])


@FUZZ
@IMAGES.seeded
@given(body=IMAGES.bodies)
async def test_images_survive_fuzzing(proxy: TestClient[Any, Any], fake_poe: FakePoe,
                                      body: Any) -> None:
    await IMAGES.check(proxy, fake_poe, body)
