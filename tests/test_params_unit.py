"""Bot parameters, pure: collecting candidates, schema checks, resolution, placement."""

from __future__ import annotations

from typing import Any

import pytest

from poe2openai.errors import InvalidRequest
from poe2openai.translate.params import (
    attach_parameters,
    check_schema,
    collect_candidates,
    resolve_parameters,
)

CLAUDE = [
    {"name": "thinking_budget", "schema": {"type": "number", "minimum": 0, "maximum": 31999},
     "default_value": 0},
    {"name": "web_search", "schema": {"type": "boolean"}, "default_value": False},
]
GPT = [
    {"name": "reasoning_effort",
     "schema": {"type": "string", "enum": ["none", "low", "medium", "high", "xhigh"]}},
    {"name": "verbosity", "schema": {"type": "string", "enum": ["low", "medium", "high"]}},
    {"name": "web_search", "schema": {"type": "boolean"}},
]
GEMINI = [{"name": "thinking_level", "schema": {"type": "string", "enum": ["low", "high"]}}]


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


def resolve(schema: list[dict[str, Any]] | None, defaults: dict[str, Any] | None = None,
            **extra: Any) -> Any:
    return resolve_parameters(collect_candidates(body(**extra)), schema, defaults, bot="bot")


def test_unknown_schema_passes_everything_through() -> None:
    plan = resolve(None, reasoning_effort="minimal", thinking={"type": "enabled",
                                                               "budget_tokens": 2048},
                   aspect_ratio="16:9", web_search=True, temperature=0.2, max_tokens=9,
                   extra_body={"thinking_level": "high", "top_p": 0.5})
    assert plan.parameters == {"reasoning_effort": "minimal", "thinking_budget": 2048,
                               "aspect_ratio": "16:9", "web_search": True,
                               "thinking_level": "high"}
    assert plan.consumed == {"reasoning_effort", "thinking", "aspect_ratio", "web_search",
                             "extra_body"}
    assert plan.dropped == []


@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh", "max"])
def test_any_reasoning_effort_string_is_accepted_without_a_schema(effort: str) -> None:
    assert resolve(None, reasoning_effort=effort).parameters == {"reasoning_effort": effort}


def test_known_schema_keeps_its_names_and_drops_the_rest() -> None:
    plan = resolve(CLAUDE, web_search=True, aspect_ratio="1:1", google={
        "thinking_config": {"thinking_budget": 1024}}, web_search_options={})
    assert plan.parameters == {"web_search": True, "thinking_budget": 1024}
    assert plan.dropped == ["aspect_ratio"]
    assert "aspect_ratio" not in plan.consumed


def test_defaults_merge_and_request_wins() -> None:
    plan = resolve(CLAUDE, {"thinking_budget": 500, "web_search": True}, thinking_budget=64,
                   web_search=None)
    assert plan.parameters == {"thinking_budget": 64}


@pytest.mark.parametrize(("schema", "extra", "param"), [
    (CLAUDE, {"thinking_budget": 40000}, "thinking_budget"),
    (CLAUDE, {"thinking": {"type": "enabled", "budget_tokens": 99999}}, "thinking.budget_tokens"),
    (CLAUDE, {"web_search": "yes"}, "web_search"),
    (CLAUDE, {"extra_body": {"web_search": 1}}, "extra_body.web_search"),
    (GPT, {"reasoning_effort": "minimal"}, "reasoning_effort"),
    (GPT, {"verbosity": "loud"}, "verbosity"),
])
def test_invalid_values_for_a_known_schema(schema: Any, extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        resolve(schema, **extra)
    assert err.value.param == param
    assert err.value.status == 400


@pytest.mark.parametrize(("extra", "param"), [
    ({"reasoning_effort": 3}, "reasoning_effort"),
    ({"thinking": "lots"}, "thinking"),
    ({"thinking": {"budget_tokens": -5}}, "thinking.budget_tokens"),
    ({"thinking": {"budget_tokens": 1.5}}, "thinking.budget_tokens"),
    ({"google": {"thinking_config": {"thinking_budget": "x"}}},
     "google.thinking_config.thinking_budget"),
    ({"extra_body": [1]}, "extra_body"),
])
def test_malformed_fields(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        collect_candidates(body(**extra))
    assert err.value.param == param


def test_google_dynamic_budget_and_disabled_thinking() -> None:
    assert resolve(None, google={"thinking_config": {"thinking_budget": -1}}).parameters == \
        {"thinking_budget": -1}
    assert resolve(None, thinking={"type": "disabled"}).parameters == {"thinking_budget": 0}


def test_effort_maps_to_a_budget_or_a_level_when_the_bot_has_no_effort_option() -> None:
    assert resolve(CLAUDE, reasoning_effort="high").parameters == {"thinking_budget": 25599}
    assert resolve(CLAUDE, reasoning_effort="none").parameters == {"thinking_budget": 0}
    # An explicit budget wins over the mapped effort.
    plan = resolve(CLAUDE, reasoning_effort="high", thinking={"budget_tokens": 100})
    assert plan.parameters == {"thinking_budget": 100} and plan.dropped == ["reasoning_effort"]
    assert resolve(GEMINI, reasoning_effort="medium").parameters == {"thinking_level": "high"}
    assert resolve(GEMINI, reasoning_effort="low").parameters == {"thinking_level": "low"}
    plan = resolve([], reasoning_effort="low")
    assert plan.parameters == {} and plan.dropped == ["reasoning_effort"]


def test_openrouter_reasoning_object() -> None:
    plan = resolve(GPT, reasoning={"effort": "high"})
    assert plan.parameters == {"reasoning_effort": "high"}
    assert resolve(CLAUDE, reasoning={"max_tokens": 4000}).parameters == {"thinking_budget": 4000}


def test_standard_openai_fields_never_become_parameters() -> None:
    schema = [{"name": "temperature", "schema": {"type": "number"}}]
    plan = resolve(schema, temperature=0.5, top_p=0.1, extra_body={"temperature": 0.7})
    assert plan.parameters == {}


@pytest.mark.parametrize(("value", "schema", "ok"), [
    (3, {"type": "integer", "minimum": 0, "maximum": 3}, True),
    (3.0, {"type": "integer"}, True),
    (3.5, {"type": "integer"}, False),
    (True, {"type": "number"}, False),
    (1, {"type": "boolean"}, False),
    ("a", {"type": ["string", "null"]}, True),
    (None, {"type": ["string", "null"]}, True),
    ("b", {"enum": ["a"]}, False),
    (True, {"enum": [1]}, False),
    (5, {"exclusiveMaximum": 5}, False),
    ("abc", {"maxLength": 2}, False),
    (["a", 1], {"type": "array", "items": {"type": "string"}}, False),
    (2, {"anyOf": [{"type": "string"}, {"type": "integer"}]}, True),
    ({"a": 1}, {"type": "object"}, True),
    ("x", {"format": "whatever"}, True),
])
def test_check_schema(value: Any, schema: dict[str, Any], ok: bool) -> None:
    assert (check_schema(value, schema) is None) is ok


def test_parameters_go_on_the_last_user_message() -> None:
    query = [{"role": "user", "content": "a"}, {"role": "user", "content": "b",
                                                 "parameters": {"x": 1}},
             {"role": "tool", "content": "[]"}]
    attach_parameters(query, {"y": 2})
    assert "parameters" not in query[0] and "parameters" not in query[2]
    assert query[1]["parameters"] == {"x": 1, "y": 2}
    only_system = [{"role": "system", "content": "s"}]
    attach_parameters(only_system, {"y": 2})
    assert only_system[0]["parameters"] == {"y": 2}


def test_a_null_the_bot_has_no_use_for_is_not_reported_as_dropped() -> None:
    plan = resolve(CLAUDE, foo=None, bar=1)
    assert plan.dropped == ["bar"]
