"""models.yaml schema: what is accepted, and how errors name the file, line and key."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import get_args

import pytest

from poe2openai import registry
from poe2openai.modelconfig import (
    REASONING_FORMATS,
    TOOL_MODES,
    ConfigError,
    CustomModel,
    ModelConfig,
    ModelEntry,
    config_to_json,
    parse_yaml,
    validate,
)
from poe2openai.registry import default_text

ROOT = Path(__file__).resolve().parent.parent

ORIGINAL_EXAMPLE = """\
enable: true
models:
  claude-3.7-sonnet:
    mapping: claude-3-7-sonnet-latest
  flux-pro:
    replace_response: true
  gpt-3.5-turbo:
    enable: false
custom_models:
  - id: my-private-bot
    owned_by: custom
    created: 1754000000
api_token: "poe-key"
use_v1_api: true
"""


def test_original_projects_file_is_accepted_unchanged() -> None:
    cfg = parse_yaml(ORIGINAL_EXAMPLE)
    assert cfg.enable is True and cfg.allow_unlisted is True
    assert cfg.models["claude-3.7-sonnet"].mapping == "claude-3-7-sonnet-latest"
    assert cfg.models["flux-pro"].replace_response is True
    assert cfg.models["gpt-3.5-turbo"].enable is False
    assert cfg.custom_models == (CustomModel("my-private-bot", 1754000000, "custom"),)
    assert cfg.api_token == "poe-key" and cfg.use_v1_api is True


def test_extensions() -> None:
    cfg = parse_yaml("""
enable: true
allow_unlisted: false
models:
  Claude-Sonnet-4:
    tool_mode: xml
    reasoning_format: think
    parameters:
      thinking_budget: 4096
      web_search: true
      nested: {a: [1, 2.5, "x", null]}
""")
    entry = cfg.models["Claude-Sonnet-4"]
    assert cfg.allow_unlisted is False
    assert (entry.tool_mode, entry.reasoning_format) == ("xml", "think")
    assert dict(entry.parameters) == {"thinking_budget": 4096, "web_search": True,
                                      "nested": {"a": [1, 2.5, "x", None]}}
    assert type(entry.parameters["thinking_budget"]) is int  # plain types, JSON-ready


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"], ids=["empty", "comment", "doc"])
def test_empty_file_means_defaults(text: str) -> None:
    assert parse_yaml(text) == ModelConfig()


def test_empty_values_mean_defaults() -> None:
    cfg = parse_yaml("enable: true\nmodels:\ncustom_models:\napi_token: ''\n")
    assert cfg == ModelConfig(enable=True)
    cfg = parse_yaml("models:\n  gpt-4o:\n  Bot: {mapping: }\n")
    assert cfg.models["gpt-4o"] == ModelEntry() and cfg.models["Bot"] == ModelEntry()


def test_custom_model_shorthand() -> None:
    assert parse_yaml("custom_models: [my-bot]").custom_models == (CustomModel("my-bot"),)


def test_defaults_match_model_options() -> None:
    # modelconfig does not import the registry (the registry imports it): keep them in step.
    assert TOOL_MODES == get_args(registry.ToolMode)
    assert REASONING_FORMATS == get_args(registry.ReasoningFormat)
    opts, entry = registry.ModelOptions(), ModelEntry()
    assert (entry.tool_mode, entry.reasoning_format, entry.replace_response) == (
        opts.tool_mode, opts.reasoning_format, opts.replace_response)


@pytest.mark.parametrize(("text", "line", "where", "words"), [
    ("enable: yes\n", 1, "enable", "expected true or false, got 'yes'"),
    ("enable: true\nmodels:\n  gpt-4o:\n    maping: x\n", 4, "models['gpt-4o']",
     "did you mean 'mapping'"),
    ("models:\n  gpt-4o:\n    tool_mode: json\n", 3, "models['gpt-4o'].tool_mode",
     "expected one of native, xml, got 'json'"),
    ("models:\n  a:\n    reasoning_format: visible\n", 3, "models['a'].reasoning_format",
     "reasoning_content, think, hidden"),
    ("models:\n  a:\n    parameters: [1]\n", 3, "models['a'].parameters", "mapping"),
    ("models:\n  a:\n    parameters:\n      when: 2024-01-01\n", 4, "models['a'].parameters.when",
     "quotes"),
    ("models:\n  a:\n    mapping: 123\n", 3, "models['a'].mapping", "put it in quotes"),
    ("models:\n  a:\n    mapping: x\n  b:\n    mapping: X\n", 5, "models['b'].mapping",
     "already used by 'a'"),
    ("models:\n  GPT-4o: {}\n  gpt-4o: {}\n", 3, "models['gpt-4o']", "differ only in case"),
    ("models:\n  3.5: {}\n", 2, "models", "must be a string"),
    ("models: [a, b]\n", 1, "models", "must be a mapping"),
    ("custom_models:\n  - id: a\n  - owned_by: me\n", 3, "custom_models[1]", "needs an 'id'"),
    ("custom_models:\n  - id: a\n  - id: A\n", 3, "custom_models[1]", "listed twice"),
    ("custom_models:\n  - id: a\n    created: soon\n", 3, "custom_models[0].created",
     "Unix time"),
    ("custom_models: {a: 1}\n", 1, "custom_models", "expected a list"),
    ("mdoels: {}\n", 1, None, "did you mean 'models'"),
    ("- a\n- b\n", 1, None, "must be a mapping"),
    ("models:\n  ' padded': {}\n", 2, "models[' padded']", "spaces"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 30 and "\n" not in v else None)
def test_schema_errors(text: str, line: int, where: str | None, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "cfg/models.yaml")
    err = info.value
    assert err.line == line, err
    assert err.where == where, err
    assert words in err.message, err
    assert err.describe().startswith(f"cfg/models.yaml:{line}: ")
    assert "\n" not in err.describe()


@pytest.mark.parametrize(("text", "line", "words"), [
    ("enable: true\nmodels:\n  a: [1\n", 4, "YAML syntax error"),
    ("models:\n\ta: {}\n", 2, "tabs"),
    ("enable: true\nenable: false\n", 2, "duplicate key"),
    ("models:\n  a:\n    mapping: x\n   b: 1\n", 4, "YAML syntax error"),
])
def test_yaml_syntax_errors(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "models.yaml")
    assert info.value.line == line, info.value
    assert words in info.value.message, info.value


def test_json_from_the_admin_page_uses_the_same_schema() -> None:
    cfg = parse_yaml(ORIGINAL_EXAMPLE)
    data = config_to_json(cfg)
    assert "api_token" not in data
    assert validate(data) == dataclasses.replace(cfg, api_token=None)
    again = validate({**data, "api_token": "poe-key"})
    assert again == cfg
    with pytest.raises(ConfigError) as info:
        validate({**data, "models": {"a": {"enable": "no"}}})
    assert info.value.line is None and info.value.where == "models['a'].enable"


def test_shipped_models_yaml_documents_every_key_and_means_defaults() -> None:
    shipped = (ROOT / "config" / "models.yaml").read_text()
    assert shipped == default_text(), "config/models.yaml and the packaged template differ"
    cfg = parse_yaml(shipped)
    # Behaves exactly like no file: nothing mapped, nothing hidden, nothing refused.
    assert cfg.models == {} and cfg.custom_models == () and cfg.allow_unlisted
    for key in ("enable", "allow_unlisted", "models", "custom_models", "api_token", "use_v1_api",
                "mapping", "replace_response", "tool_mode", "reasoning_format", "parameters",
                "owned_by", "created"):
        assert f"{key}" in shipped.replace("# ", ""), key
