"""Property-based fuzzing of the Chat Completions request parser through the real server.

The bodies are valid chat requests (messages with every kind of content part, tool
history, tools and tool_choice, sampling fields, bot parameters, extra_body, unknown
keys) with one to three changes: a wrong type, deep nesting, a huge number, control
characters in a key or a value, an odd content part; mostly in the fields the parser
reads (``SLOTS``). See ``tests/fuzzing.py`` for what is checked after each example and
for how another API face adds its own strategy.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from poe2openai.registry import ModelOptions
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
from tests.helpers import chat_body
from tests.model_options import use_options

PDF_URL = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()

#: Bots with a published schema in the fake's model list, bots without one, and two with
#: other options (see ``fuzz_proxy``).
MODELS = ["Some-Private-Bot", "GPT-4o", "Claude-Sonnet-4.5", "XmlBot", "gpt-5.2",
          "ReplaceBot", "gemini-2.5-flash", "nano-banana"]
TOOLS = ["get_weather", "f"]

#: Free-form JSON the server passes on: mostly too deep.
_DEEP = weighted((3, deep_values()), (1, weird()))
#: Numbers the server converts: mostly too large.
_BIG = weighted((3, huge_numbers()), (1, weird()))
#: A plain value under an odd name (the name is what is tested).
_PLAIN = weighted((2, st.sampled_from([1, True, "x", None])), (1, weird()))
#: An ``allowed_tools`` choice whose list of tools is odd.
_ALLOWED = st.builds(lambda tools: {"type": "allowed_tools", "allowed_tools": {"tools": tools}},
                     weird())

#: Where the parser looks; most changes land on one of these (the free-form and numeric
#: fields that are passed on, more often).
SLOTS = slots(
    slot("?", values=_PLAIN, weight=2), slot("extra_body", "?", values=_PLAIN),
    slot("tools", "*", "function", "parameters", values=_DEEP, weight=2),
    slot("messages", "*", "tool_calls", "*", "function", "arguments", values=_DEEP, weight=2),
    slot("custom_flag", values=_DEEP, weight=2),
    slot("thinking", "budget_tokens", values=_BIG, weight=2),
    slot("reasoning", "max_tokens", values=_BIG, weight=2),
    slot("n", values=_BIG), slot("tool_choice", values=_ALLOWED, weight=3),
    slot("messages", "*", "role", weight=2), slot("messages", "*", "content", "*", "type"),
    slot("messages", "*", "content", "*", "text", weight=2), slot("messages", "*", "content"),
    slot("messages", "*", "content", "*"), slot("messages", "*", "content", "*", "image_url"),
    slot("messages", "*", "tool_calls", "*"), slot("tools", "*"), slot("?"),
)


def _text() -> st.SearchStrategy[str]:
    return st.sampled_from(["Hi", "", "  ", "What is the weather?", "Ünïcode 漢字 😀"])


def _part() -> st.SearchStrategy[dict[str, Any]]:
    text = st.fixed_dictionaries({"type": st.sampled_from(["text", "input_text", "output_text"]),
                                  "text": _text()})
    refusal = st.fixed_dictionaries({"type": st.just("refusal"), "refusal": _text()})
    url = st.sampled_from([PNG_URL, "https://pfst.cf2.poecdn.net/base/image/a.png",
                           "http://127.0.0.1:9/cat.png"])
    image = st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.one_of(
        st.fixed_dictionaries({"url": url}, optional={"detail": st.just("auto")}), url)})
    file = st.fixed_dictionaries({"type": st.just("file"), "file": st.fixed_dictionaries(
        {"file_data": st.sampled_from([PDF_URL, "JVBERi0xLjQK"])},
        optional={"filename": st.just("report.pdf")})})
    return weighted((2, image), (5, text), (1, refusal), (1, file))


def _tool_call() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "id": st.sampled_from(["c1", "c2"]), "type": st.just("function"),
        "function": st.fixed_dictionaries({
            "name": st.sampled_from(TOOLS),
            "arguments": st.one_of(st.sampled_from(['{"city": "Paris"}', "", "{}"]),
                                   st.dictionaries(st.sampled_from(["city", "days"]),
                                                   json_values(4), max_size=2))})})


def _message() -> st.SearchStrategy[dict[str, Any]]:
    content = weighted((3, st.lists(_part(), min_size=1, max_size=3)), (3, _text()),
                       (1, st.none()))
    plain = st.fixed_dictionaries({
        "role": st.sampled_from(["system", "developer", "user", "user", "assistant"]),
        "content": content})
    calls = st.fixed_dictionaries({"role": st.just("assistant"), "content": st.none(),
                                   "tool_calls": st.lists(_tool_call(), min_size=1, max_size=2)})
    result = st.fixed_dictionaries({"role": st.just("tool"),
                                    "tool_call_id": st.sampled_from(["c1", "c2"]),
                                    "content": content})
    legacy = st.fixed_dictionaries({"role": st.just("function"),
                                    "name": st.sampled_from(TOOLS), "content": _text()})
    return weighted((5, plain), (2, calls), (2, result), (1, legacy))


def _tools() -> st.SearchStrategy[list[dict[str, Any]]]:
    schema = st.one_of(
        st.just({"type": "object", "properties": {"city": {"type": "string"}},
                 "required": ["city"]}),
        st.fixed_dictionaries({"type": st.just("object"), "properties": st.dictionaries(
            st.sampled_from(["city", "days", "x"]), json_values(4), max_size=2)}))
    tool = st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries(
        {"name": st.sampled_from(TOOLS)}, optional={"description": _text(), "parameters": schema})})
    return st.lists(tool, min_size=1, max_size=2, unique_by=lambda t: t["function"]["name"])


def _tool_choice() -> st.SearchStrategy[Any]:
    named = {"type": "function", "function": {"name": TOOLS[0]}}
    return st.sampled_from([
        "auto", "none", "required", named,
        {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [named]}},
        {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
            {"type": "function", "name": TOOLS[0]}]}},
    ])


def chat_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """Valid Chat Completions requests, of every shape the parser knows."""
    budget = st.integers(0, 32000)
    params: dict[str, st.SearchStrategy[Any]] = {
        "reasoning_effort": st.sampled_from(["none", "low", "medium", "high", "xhigh"]),
        "verbosity": st.sampled_from(["low", "high"]),
        "thinking": optional({"type": st.sampled_from(["enabled", "disabled"]),
                              "budget_tokens": budget}),
        "reasoning": optional({"effort": st.sampled_from(["low", "high"]),
                               "max_tokens": budget}),
        "google": st.fixed_dictionaries({"thinking_config": optional({
            "thinking_budget": budget, "thinking_level": st.sampled_from(["low", "high"])})}),
        "web_search_options": st.just({}),
        "thinking_budget": budget,
        "web_search": st.booleans(),
        "aspect_ratio": st.sampled_from(["1:1", "16:9"]),
        "custom_flag": json_values(4),
    }
    fields: dict[str, st.SearchStrategy[Any]] = {
        "stream": st.booleans(),
        "stream_options": optional({"include_usage": st.booleans()}),
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "n": st.sampled_from([1, 1.0]),
        "max_tokens": st.integers(1, 10**6),
        "stop": st.one_of(_text(), st.lists(_text(), max_size=3)),
        "logit_bias": st.dictionaries(st.sampled_from(["50256", "1"]), st.integers(-100, 100)),
        "seed": st.integers(0, 2**31),
        "user": _text(),
        "parallel_tool_calls": st.booleans(),
        **params,
        "extra_body": optional(params),
    }
    tooling = weighted((2, st.fixed_dictionaries(
        {"tools": _tools()}, optional={"tool_choice": _tool_choice()})), (1, st.just({})))
    return st.builds(
        lambda model, messages, extra, tools: {"model": model, "messages": messages, **extra,
                                               **tools},
        st.sampled_from(MODELS), st.lists(_message(), min_size=1, max_size=4), optional(fields),
        tooling)


_USER = [{"role": "user", "content": "Hi"}]
_CALL = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
_WEATHER = [{"type": "function", "function": {"name": "get_weather"}}]

#: The shapes of the bugs the fuzzing found so far (see test_request_limits.py etc.).
SEEDS: list[Any] = [
    {"model": "GPT-4o", "messages": _USER, "x\ny": 1},
    {"model": "GPT-4o", "messages": _USER, "stream": True, "x\ny": 1},
    {"model": "Claude-Sonnet-4.5", "messages": _USER, "extra_body": {"x\ny": 1}},
    {"model": "GPT-4o", "messages": _USER, "tools": [
        {"type": "function", "function": {"name": "f", "parameters": deep(300)}}]},
    {"model": "GPT-4o", "messages": [*_USER, {"role": "assistant", "tool_calls": [
        {**_CALL, "function": {"name": "f", "arguments": deep(300)}}]}]},
    {"model": "Some-Private-Bot", "messages": _USER, "custom": deep(300)},
    {"model": "Some-Private-Bot", "messages": _USER, "thinking": {"budget_tokens": 1e300}},
    {"model": "Some-Private-Bot", "messages": _USER, "reasoning": {"max_tokens": 1e20}},
    {"model": "GPT-4o", "messages": _USER, "tools": _WEATHER,
     "tool_choice": {"type": "allowed_tools", "allowed_tools": {"tools": True}}},
    {"model": "GPT-4o", "messages": _USER, "n": 1.0},
    {"model": "GPT-4o", "messages": [{"role": "assistant", "content": None}]},
    {"model": "GPT-4o", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": PNG_URL}}, {"type": "text", "text": 5}]}]},
    {"model": "GPT-4o", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": PNG_URL}}]}, {"role": "user", "content": 7}]},
    {"model": "GPT-4o", "messages": [{"role": ["user"], "content": "Hi"}]},
    {"model": "GPT-4o", "messages": [{"role": "user", "content": [{"type": [], "text": "Hi"}]}]},
    {"model": "GPT-4o", "tools": _WEATHER, "messages": [
        {"role": "assistant", "content": None, "tool_calls": [_CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": "18C"}]},
]

CHAT = Face("/v1/chat/completions", weighted(
    (1, chat_bodies()), (6, mutated(chat_bodies(), SLOTS)),
    (1, st.one_of(weird(), st.lists(json_values(), max_size=2)))), normal=chat_body(),
    seeds=SEEDS)


@pytest.fixture
def fuzz_proxy(proxy: TestClient[Any, Any]) -> TestClient[Any, Any]:
    """The proxy with two more model behaviours to reach: XML tools, replace_response."""
    use_options(proxy, {"XmlBot": ModelOptions(tool_mode="xml"),
                        "ReplaceBot": ModelOptions(replace_response=True)})
    return proxy


@FUZZ
@CHAT.seeded
@given(body=CHAT.bodies)
async def test_chat_completions_survive_fuzzing(fuzz_proxy: TestClient[Any, Any],
                                                fake_poe: FakePoe, body: Any) -> None:
    await CHAT.check(fuzz_proxy, fake_poe, body)
