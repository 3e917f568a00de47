"""Bot parameters through the proxy: extra_body, reasoning_effort, thinking, schemas from /v1/models."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient

from poe2openai.registry import ModelOptions
from tests.fake_poe import FakePoe
from tests.helpers import AUTH, assert_openai_error, chat_body
from tests.model_options import use_options

MSG: Any = [{"role": "user", "content": "Hi"}]


def sent_parameters(fake: FakePoe) -> dict[str, Any] | None:
    assert fake.last is not None and fake.last.last_user_message is not None
    return fake.last.last_user_message.get("parameters")


async def test_extra_body_becomes_parameters_checked_by_the_schema(
        sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="Claude-Sonnet-4.5", messages=MSG,
        extra_body={"thinking_budget": 1024, "web_search": True, "aspect_ratio": "1:1"})
    assert sent_parameters(fake_poe) == {"thinking_budget": 1024, "web_search": True}
    assert raw.headers["x-dropped-params"] == "aspect_ratio"  # not an option of this bot
    assert fake_poe.models_hits >= 1


async def test_sdk_fields_map_to_parameters(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    await sdk.chat.completions.create(model="gpt-5.2", messages=MSG, reasoning_effort="xhigh",
                                      verbosity="low")
    assert sent_parameters(fake_poe) == {"reasoning_effort": "xhigh", "verbosity": "low"}
    await sdk.chat.completions.create(
        model="claude-sonnet-4.5", messages=MSG,
        extra_body={"thinking": {"type": "enabled", "budget_tokens": 2048}})
    assert sent_parameters(fake_poe) == {"thinking_budget": 2048}
    await sdk.chat.completions.create(
        model="gemini-2.5-flash", messages=MSG,
        extra_body={"extra_body": {"google": {"thinking_config": {"thinking_budget": 512}}}})
    assert sent_parameters(fake_poe) == {"thinking_budget": 512}
    await sdk.chat.completions.create(model="nano-banana", messages=MSG,
                                      extra_body={"aspect_ratio": "16:9"})
    assert sent_parameters(fake_poe) == {"aspect_ratio": "16:9"}


@pytest.mark.parametrize(("model", "extra", "param"), [
    ("gpt-5.2", {"reasoning_effort": "minimal"}, "reasoning_effort"),
    ("claude-sonnet-4.5", {"thinking_budget": 40000}, "thinking_budget"),
    ("claude-sonnet-4.5", {"thinking": {"type": "enabled", "budget_tokens": 99999}},
     "thinking.budget_tokens"),
    ("nano-banana", {"aspect_ratio": "5:4"}, "aspect_ratio"),
    ("nano-banana", {"image_only": "yes"}, "image_only"),
])
async def test_invalid_values_are_400_naming_the_field(
        proxy: TestClient[Any, Any], fake_poe: FakePoe, model: str, extra: dict[str, Any],
        param: str) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json=chat_body(model=model, **extra))
    err = await assert_openai_error(resp, 400, "invalid_request_error", param=param)
    assert param.split(".")[0] in err["message"]
    assert not fake_poe.queries  # nothing was sent to Poe


@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh"])
async def test_unknown_bots_get_every_effort(sdk: openai.AsyncOpenAI, fake_poe: FakePoe,
                                            effort: str) -> None:
    """B14: no restriction to low/medium/high when the bot's options are unknown."""
    await sdk.chat.completions.create(model="Some-Private-Bot", messages=MSG,
                                      reasoning_effort=effort,  # type: ignore[arg-type]
                                      extra_body={"custom_flag": 7})
    assert sent_parameters(fake_poe) == {"reasoning_effort": effort, "custom_flag": 7}


async def test_model_list_failure_means_unknown_schema(proxy: TestClient[Any, Any],
                                                       fake_poe: FakePoe) -> None:
    fake_poe.models_failure = 500
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json=chat_body(model="claude-sonnet-4.5", thinking_budget=99999))
    assert resp.status == 200
    assert sent_parameters(fake_poe) == {"thinking_budget": 99999}
    assert "x-dropped-params" not in resp.headers


async def test_model_defaults_and_request_override(proxy: TestClient[Any, Any],
                                                   fake_poe: FakePoe) -> None:
    use_options(proxy, {"claude-sonnet-4.5": ModelOptions(
        parameters={"web_search": True, "thinking_budget": 4096})})
    await proxy.post("/v1/chat/completions", headers=AUTH,
                     json=chat_body(model="claude-sonnet-4.5"))
    assert sent_parameters(fake_poe) == {"web_search": True, "thinking_budget": 4096}
    await proxy.post("/v1/chat/completions", headers=AUTH,
                     json=chat_body(model="claude-sonnet-4.5", thinking_budget=10,
                                    web_search=None))
    assert sent_parameters(fake_poe) == {"thinking_budget": 10}


async def test_effort_for_a_budget_bot(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    await sdk.chat.completions.create(model="claude-sonnet-4.5", messages=MSG,
                                      reasoning_effort="medium")
    assert sent_parameters(fake_poe) == {"thinking_budget": 15999}


async def test_parameters_reach_the_user_message_when_a_tool_message_is_last(
        proxy: TestClient[Any, Any], fake_poe: FakePoe) -> None:
    """B14: options are not skipped when the conversation ends with a tool result."""
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "Some-Bot", "messages": messages, "reasoning_effort": "low"})
    assert resp.status == 200
    assert fake_poe.last is not None
    users = [m for m in fake_poe.last.query if m["role"] == "user"]
    assert users[-1]["parameters"] == {"reasoning_effort": "low"}


async def test_no_catalog_lookup_without_candidates(proxy: TestClient[Any, Any],
                                                    fake_poe: FakePoe) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json=chat_body(model="claude-sonnet-4.5", temperature=0.3,
                                           top_p=0.9))
    assert resp.status == 200
    assert fake_poe.models_hits == 0
    assert sent_parameters(fake_poe) is None
    assert resp.headers["x-dropped-params"] == "top_p"


async def test_invalid_parameter_fails_before_any_upload(proxy: TestClient[Any, Any],
                                                         fake_poe: FakePoe) -> None:
    png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"\
          "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "claude-sonnet-4.5", "thinking_budget": -1, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": png}}]}]})
    await assert_openai_error(resp, 400, param="thinking_budget")
    assert fake_poe.uploads == [] and not fake_poe.queries
