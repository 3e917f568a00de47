"""Request values the server cannot pass on are a 400 naming the field, never a 500.

JSON nested deeper than the encoder writes (tool schemas, tool-call arguments sent as
objects, bot parameters), numbers too large to encode, malformed ``allowed_tools``; and two
details of OpenAI's schema (``n: 1.0``, a conversation of empty assistant turns).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from poe2openai.jsonlib import MAX_DEPTH, too_deep
from poe2openai.registry import ModelOptions
from tests.fake_poe import FakePoe
from tests.hardening import nested, still_answers
from tests.helpers import AUTH, assert_openai_error, chat_body
from tests.model_options import use_options


def _tool(parameters: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "f", "parameters": parameters}}


def _history(arguments: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "Hi"},
            {"role": "assistant", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"}]


# --- nesting ------------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("model", "extra", "param"), [
    ("GPT-4o", {"tools": [_tool(nested(300))]}, "tools[0].function.parameters.a.a"),
    ("GPT-4o", {"messages": _history(nested(300))},
     "messages[1].tool_calls[0].function.arguments.a.a"),
    ("Some-Private-Bot", {"custom_option": nested(300)}, "custom_option.a.a"),
    ("Some-Private-Bot", {"extra_body": {"custom_option": nested(300)}},
     "extra_body.custom_option.a.a"),
    ("Some-Private-Bot", {"custom_option": nested(MAX_DEPTH)}, "custom_option.a.a"),
])
async def test_json_nested_too_deep_is_a_400_naming_the_field(
        proxy: TestClient[Any, Any], fake_poe: FakePoe, stream: bool, model: str,
        extra: dict[str, Any], param: str) -> None:
    body = chat_body(model=model, stream=stream)
    body.update(extra)
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=body)
    err = await assert_openai_error(resp, 400, "invalid_request_error")
    assert err["param"].startswith(param), err
    assert len(err["param"]) < 300
    assert "nested too deeply" in err["message"]
    assert not fake_poe.queries
    await still_answers(proxy)


async def test_nesting_up_to_the_limit_is_passed_on(proxy: TestClient[Any, Any],
                                                    fake_poe: FakePoe) -> None:
    # The body is level 1, the option's value level 2: MAX_DEPTH levels in all.
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=chat_body(
        model="Some-Private-Bot", custom_option=nested(MAX_DEPTH - 1)))
    assert resp.status == 200
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json=chat_body(tools=[_tool(nested(40))]))
    assert resp.status == 200
    assert fake_poe.last is not None and fake_poe.last.tools is not None


async def test_xml_history_with_deep_arguments_text_is_passed_as_text(
        proxy: TestClient[Any, Any], fake_poe: FakePoe) -> None:
    """Arguments sent as a JSON string are the client's text: too deep to re-encode
    as parameters, they reach the bot as they are."""
    use_options(proxy, {"XmlBot": ModelOptions(tool_mode="xml")})
    arguments = json.dumps({"x": nested(300)})
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "XmlBot", "messages": _history(arguments), "tools": [_tool({})]})
    assert resp.status == 200
    assert fake_poe.last is not None
    assert arguments in fake_poe.last.query[1]["content"]
    await still_answers(proxy)


def test_too_deep_names_the_first_value_past_the_limit() -> None:
    assert too_deep({"a": [1, {"b": []}]}, 4) is None
    assert too_deep({"a": [1, {"b": []}]}, 3) == "a[1].b"
    assert too_deep({"a": [1, {"b": []}]}, 2) == "a[1]"
    assert too_deep([[[]]], 1) == "[0]"
    assert too_deep("text") is None and too_deep(nested(10 ** 4), 10 ** 4) is None
    long = too_deep({"k" * 150: {"k" * 150: {}}}, 2)
    assert long == "k" * 150 + "…"


# --- numbers ------------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "extra", "param"), [
    ("Claude-Sonnet-4.5", {"thinking": {"type": "enabled", "budget_tokens": 1e300}},
     "thinking.budget_tokens"),
    ("Some-Private-Bot", {"thinking": {"type": "enabled", "budget_tokens": 1e300}},
     "thinking.budget_tokens"),
    ("Some-Private-Bot", {"reasoning": {"max_tokens": 1e20}}, "reasoning.max_tokens"),
    ("Some-Private-Bot", {"reasoning": {"max_tokens": 2**31}}, "reasoning.max_tokens"),
    ("Some-Private-Bot", {"google": {"thinking_config": {"thinking_budget": 1e19}}},
     "google.thinking_config.thinking_budget"),
    ("Some-Private-Bot", {"extra_body": {"reasoning": {"max_tokens": 1e20}}},
     "extra_body.reasoning.max_tokens"),
])
async def test_budgets_too_large_to_encode_are_a_400(
        proxy: TestClient[Any, Any], fake_poe: FakePoe, model: str, extra: dict[str, Any],
        param: str) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json=chat_body(model=model, **extra))
    await assert_openai_error(resp, 400, "invalid_request_error", param=param)
    assert not fake_poe.queries
    await still_answers(proxy)


async def test_the_largest_budget_is_passed_on(proxy: TestClient[Any, Any],
                                               fake_poe: FakePoe) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=chat_body(
        model="Some-Private-Bot", reasoning={"max_tokens": float(2**31 - 1)}))
    assert resp.status == 200
    assert fake_poe.last is not None and fake_poe.last.last_user_message is not None
    assert fake_poe.last.last_user_message["parameters"] == {"thinking_budget": 2**31 - 1}


# --- tool_choice --------------------------------------------------------------------------

@pytest.mark.parametrize("listed", [True, 5, "f", {"f": 1}, None])
async def test_allowed_tools_that_is_not_a_list_is_a_400(
        proxy: TestClient[Any, Any], fake_poe: FakePoe, listed: Any) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=chat_body(
        tools=[_tool({})],
        tool_choice={"type": "allowed_tools", "allowed_tools": {"tools": listed}}))
    await assert_openai_error(resp, 400, "invalid_request_error",
                              param="tool_choice.allowed_tools.tools")
    assert not fake_poe.queries


# --- OpenAI's schema ----------------------------------------------------------------------

async def test_n_may_be_written_as_a_float(proxy: TestClient[Any, Any]) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=chat_body(n=1.0))
    assert resp.status == 200
    for n in (2.0, 1.5, 0.0, -1.0, 1e300, "1", True):
        resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=chat_body(n=n))
        await assert_openai_error(resp, 400, "invalid_request_error", param="n")


@pytest.mark.parametrize("messages", [
    [{"role": "assistant", "content": None}],
    [{"role": "assistant"}, {"role": "assistant", "content": ""}],
    [{"role": "assistant", "content": "  \n"}, {"role": "assistant", "content": []}],
    [{"role": "assistant", "content": [{"type": "text", "text": ""}], "tool_calls": []}],
])
async def test_only_empty_assistant_turns_are_refused(
        proxy: TestClient[Any, Any], fake_poe: FakePoe, messages: list[Any]) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json={"model": "GPT-4o", "messages": messages})
    await assert_openai_error(resp, 400, "invalid_request_error", param="messages")
    assert not fake_poe.queries


async def test_an_assistant_turn_with_text_alone_is_sent(proxy: TestClient[Any, Any],
                                                         fake_poe: FakePoe) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "GPT-4o", "messages": [{"role": "assistant", "content": None},
                                        {"role": "assistant", "content": "Go on"}]})
    assert resp.status == 200
    assert fake_poe.last is not None
    assert [m["content"] for m in fake_poe.last.query] == ["Go on"]


# --- values used as names -----------------------------------------------------------------

@pytest.mark.parametrize(("messages", "param"), [
    ([{"role": ["user"], "content": "Hi"}], "messages[0].role"),
    ([{"role": {"user": 1}, "content": "Hi"}], "messages[0].role"),
    ([{"role": "user", "content": [{"type": ["text"], "text": "Hi"}]}],
     "messages[0].content[0].type"),
    ([{"role": "user", "content": [{"type": {"text": 1}, "text": "Hi"}]}],
     "messages[0].content[0].type"),
])
async def test_a_role_or_part_type_that_is_not_a_string_is_a_400(
        proxy: TestClient[Any, Any], fake_poe: FakePoe, messages: list[Any], param: str) -> None:
    """Found by the fuzz test: such values were looked up in a set and raised TypeError."""
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json={"model": "GPT-4o", "messages": messages})
    await assert_openai_error(resp, 400, "invalid_request_error", param=param)
    assert not fake_poe.queries


# --- a conversation that starts with a tool round -----------------------------------------

async def test_a_conversation_of_only_a_tool_round_is_sent_as_messages(
        proxy: TestClient[Any, Any], fake_poe: FakePoe) -> None:
    """Found by the fuzz test: the last tool round goes into Poe's top-level tool_calls /
    tool_results fields, and with nothing before it the query was empty (Poe refuses that).
    It is then sent as messages instead."""
    call = {"id": "c1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "GPT-4o", "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        "messages": [{"role": "assistant", "content": None, "tool_calls": [call]},
                     {"role": "tool", "tool_call_id": "c1", "content": "18C"}]})
    assert resp.status == 200, await resp.text()
    sent = fake_poe.last
    assert sent is not None and sent.status == 200 and sent.body is not None
    assert [m.get("message_type") or m["role"] for m in sent.query] == ["function_call", "tool"]
    assert "tool_results" not in sent.body
