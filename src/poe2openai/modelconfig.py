"""The schema of ``models.yaml``: parse, validate, and turn into plain data.

Loading the text within bounds is :mod:`.yamlload`'s job. The file format is the
original project's (``enable``, ``models``, ``custom_models``, ``api_token``,
``use_v1_api``) plus a few keys of our own (``allow_unlisted`` and the per-model
``tool_mode``, ``reasoning_format`` and ``parameters``). The same validator checks hand-written YAML and the admin
page's JSON, so both are held to one schema. Errors name the file, the line
and the key. No I/O here: callers hand in text or data.
"""

from __future__ import annotations

import datetime
import difflib
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ruamel.yaml.comments import CommentedBase
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .yamlload import MAX_DEPTH, ConfigError, load_yaml, yaml_error

__all__ = [
    "ConfigError",
    "CustomModel",
    "ModelConfig",
    "ModelEntry",
    "config_to_json",
    "parse_yaml",
    "validate",
]

#: Allowed values (kept equal to registry.ToolMode / registry.ReasoningFormat by a test;
#: this module imports nothing from the registry, which imports it).
TOOL_MODES: tuple[str, ...] = ("native", "xml")
REASONING_FORMATS: tuple[str, ...] = ("reasoning_content", "think", "hidden")
DEFAULT_TOOL_MODE = "native"
DEFAULT_REASONING_FORMAT = "reasoning_content"

#: Longest model name or alias accepted (Poe's own names are far shorter).
MAX_NAME = 200

_TOP_KEYS = ("enable", "allow_unlisted", "models", "custom_models", "api_token", "use_v1_api")
_ENTRY_KEYS = ("mapping", "enable", "replace_response", "tool_mode", "reasoning_format",
               "parameters")
_CUSTOM_KEYS = ("id", "created", "owned_by")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One ``models:`` entry, keyed by the Poe bot name."""

    mapping: str | None = None  #: the alias clients see and send
    enable: bool = True  #: false: hidden from the list, requests get 404
    replace_response: bool = False
    tool_mode: str = DEFAULT_TOOL_MODE  #: one of TOOL_MODES
    reasoning_format: str = DEFAULT_REASONING_FORMAT  #: one of REASONING_FORMATS
    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class CustomModel:
    """A ``custom_models:`` item: a name added to ``/v1/models`` (e.g. a private bot)."""

    id: str
    created: int | None = None
    owned_by: str | None = None


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """The whole of models.yaml. ``ModelConfig()`` is what a missing file means."""

    enable: bool = False
    allow_unlisted: bool = True
    models: Mapping[str, ModelEntry] = field(default_factory=lambda: MappingProxyType({}))
    custom_models: tuple[CustomModel, ...] = ()
    api_token: str | None = None
    use_v1_api: bool | None = None  #: accepted for compatibility; ignored


# --------------------------------------------------------------------------- parsing


def parse_yaml(text: str, source: str | None = None, *,
               cancel: threading.Event | None = None) -> ModelConfig:
    """Parse and validate the text of a models.yaml."""
    try:
        data = load_yaml(text, source=source, cancel=cancel)
    except MarkedYAMLError as exc:
        raise yaml_error(exc, source) from None
    except YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=source) from None
    return validate(data, source=source)


# --------------------------------------------------------------------------- validation


def _line_of_key(node: Any, key: Any) -> int | None:
    if isinstance(node, CommentedBase):
        try:
            return int(node.lc.key(key)[0]) + 1
        except (KeyError, TypeError, AttributeError, IndexError):
            pass
    return _line_of_node(node)


def _line_of_value(node: Any, key: Any) -> int | None:
    if isinstance(node, CommentedBase):
        try:
            return int(node.lc.value(key)[0]) + 1
        except (KeyError, TypeError, AttributeError, IndexError):
            pass
    return _line_of_node(node)


def _line_of_item(node: Any, index: int) -> int | None:
    if isinstance(node, CommentedBase):
        try:
            return int(node.lc.item(index)[0]) + 1
        except (KeyError, TypeError, AttributeError, IndexError):
            pass
    return _line_of_node(node)


def _line_of_node(node: Any) -> int | None:
    if isinstance(node, CommentedBase):
        line = getattr(node.lc, "line", None)
        if isinstance(line, int):
            return line + 1
    return None


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


class _Validator:
    def __init__(self, source: str | None) -> None:
        self.source = source

    def fail(self, message: str, line: int | None, where: str | None) -> ConfigError:
        return ConfigError(message, line=line, where=where, source=self.source)

    def unknown_keys(self, node: Mapping[Any, Any], allowed: tuple[str, ...], where: str,
                     what: str) -> None:
        for key in node:
            if key in allowed:
                continue
            line = _line_of_key(node, key)
            if not isinstance(key, str):
                raise self.fail(f"unexpected key {_show(key)} in {what}", line, where or None)
            hint = difflib.get_close_matches(key, allowed, n=1)
            raise self.fail(
                f"unknown key {key!r} in {what}"
                + (f" (did you mean {hint[0]!r}?)" if hint else
                   f"; allowed keys: {', '.join(allowed)}"),
                line, where or None)

    def boolean(self, node: Mapping[Any, Any], key: str, where: str,
                default: bool | None) -> bool | None:
        value = node.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        raise self.fail(f"expected true or false, got {_show(value)}",
                        _line_of_value(node, key), where)

    def text(self, node: Mapping[Any, Any], key: str, where: str, *, name: bool) -> str | None:
        value = node.get(key)
        if value is None:
            return None
        line = _line_of_value(node, key)
        if not isinstance(value, str):
            raise self.fail(f"expected a string, got {_show(value)}"
                            + (" (put it in quotes)" if isinstance(value, int | float) else ""),
                            line, where)
        value = str(value)
        if name:
            self.check_name(value, line, where)
        elif value == "":
            return None
        return value

    def check_name(self, value: str, line: int | None, where: str) -> None:
        if not value.strip():
            raise self.fail("must not be empty", line, where)
        if value != value.strip():
            raise self.fail(f"{value!r} starts or ends with spaces", line, where)
        if len(value) > MAX_NAME:
            raise self.fail(f"longer than {MAX_NAME} characters", line, where)
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise self.fail("contains control characters", line, where)

    def choice(self, node: Mapping[Any, Any], key: str, where: str, allowed: tuple[str, ...],
               default: str) -> str:
        value = node.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or value not in allowed:
            raise self.fail(f"expected one of {', '.join(allowed)}, got {_show(value)}",
                            _line_of_value(node, key), where)
        return str(value)

    def plain(self, value: Any, line: int | None, where: str, depth: int = 4) -> Any:
        """A JSON-compatible copy of ``value`` (Poe parameters travel as JSON).
        ``depth``: how deep ``value`` sits in the file (parameters sit at level 4)."""
        if depth > MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} levels deep", line, where)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return str(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.fail("numbers must be finite", line, where)
            return float(value)
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise self.fail(f"keys must be strings, got {_show(k)}",
                                    _line_of_key(value, k), where)
                out[str(k)] = self.plain(v, _line_of_value(value, k), f"{where}.{k}",
                                         depth + 1)
            return out
        if isinstance(value, list | tuple):
            return [self.plain(v, _line_of_item(value, i), f"{where}[{i}]", depth + 1)
                    for i, v in enumerate(value)]
        if isinstance(value, datetime.date):
            raise self.fail(f"{value} is read as a date; put it in quotes", line, where)
        raise self.fail(f"unsupported value {_show(value)}", line, where)

    def mapping(self, value: Any, line: int | None, where: str, what: str) -> Mapping[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(f"{what} must be a mapping (key: value lines), got {_show(value)}",
                            line, where)
        return value

    def entry(self, node: Any, line: int | None, where: str) -> ModelEntry:
        node = self.mapping(node, line, where, "a model entry")
        self.unknown_keys(node, _ENTRY_KEYS, where, "a model entry")
        params_node = node.get("parameters")
        params: dict[str, Any] = {}
        if params_node is not None:
            pline = _line_of_value(node, "parameters")
            if not isinstance(params_node, Mapping):
                raise self.fail(f"expected a mapping of Poe bot parameters, got "
                                f"{_show(params_node)}", pline, f"{where}.parameters")
            params = self.plain(params_node, pline, f"{where}.parameters")
        return ModelEntry(
            mapping=self.text(node, "mapping", f"{where}.mapping", name=True),
            enable=bool(self.boolean(node, "enable", f"{where}.enable", True)),
            replace_response=bool(self.boolean(node, "replace_response",
                                               f"{where}.replace_response", False)),
            tool_mode=self.choice(node, "tool_mode", f"{where}.tool_mode", TOOL_MODES,
                                  DEFAULT_TOOL_MODE),
            reasoning_format=self.choice(node, "reasoning_format", f"{where}.reasoning_format",
                                         REASONING_FORMATS, DEFAULT_REASONING_FORMAT),
            parameters=MappingProxyType(params),
        )

    def custom(self, node: Any, line: int | None, where: str) -> CustomModel:
        if isinstance(node, str):  # a bare name is accepted as shorthand
            self.check_name(str(node), line, where)
            return CustomModel(id=str(node))
        node = self.mapping(node, line, where, "a custom model")
        self.unknown_keys(node, _CUSTOM_KEYS, where, "a custom model")
        model_id = self.text(node, "id", f"{where}.id", name=True)
        if model_id is None:
            raise self.fail("a custom model needs an 'id'", line, where)
        created = node.get("created")
        if created is not None and (isinstance(created, bool) or not isinstance(created, int)
                                    or created < 0):
            raise self.fail(f"expected a Unix time in seconds, got {_show(created)}",
                            _line_of_value(node, "created"), f"{where}.created")
        owned_by = self.text(node, "owned_by", f"{where}.owned_by", name=False)
        return CustomModel(id=model_id, created=None if created is None else int(created),
                           owned_by=owned_by)

    def config(self, data: Any) -> ModelConfig:
        if data is None:
            return ModelConfig()
        if not isinstance(data, Mapping):
            raise self.fail(f"the file must be a mapping (key: value lines), got {_show(data)}",
                            _line_of_node(data) or 1, None)
        self.unknown_keys(data, _TOP_KEYS, "", "models.yaml")
        models_node = self.mapping(data.get("models"), _line_of_value(data, "models"), "models",
                                   "'models'")
        models: dict[str, ModelEntry] = {}
        seen_keys: dict[str, str] = {}
        seen_alias: dict[str, str] = {}
        for key, value in models_node.items():
            line = _line_of_key(models_node, key)
            if not isinstance(key, str):
                raise self.fail(f"the model name {_show(key)} must be a string (put it in quotes)",
                                line, "models")
            key = str(key)
            where = f"models[{key!r}]"
            self.check_name(key, line, where)
            other = seen_keys.get(key.lower())
            if other is not None:
                raise self.fail(f"{key!r} and {other!r} differ only in case; names match "
                                "case-insensitively, so keep one", line, where)
            seen_keys[key.lower()] = key
            entry = self.entry(value, line, where)
            if entry.mapping is not None:
                twin = seen_alias.get(entry.mapping.lower())
                if twin is not None:
                    raise self.fail(f"the alias {entry.mapping!r} is already used by {twin!r}",
                                    _line_of_value(value, "mapping") if isinstance(value, Mapping)
                                    else line, f"{where}.mapping")
                seen_alias[entry.mapping.lower()] = key
            models[key] = entry
        custom_node = data.get("custom_models")
        customs: list[CustomModel] = []
        if custom_node is not None:
            cline = _line_of_value(data, "custom_models")
            if not isinstance(custom_node, list | tuple):
                raise self.fail(f"expected a list ('- id: ...' lines), got {_show(custom_node)}",
                                cline, "custom_models")
            seen_custom: set[str] = set()
            for i, item in enumerate(custom_node):
                model = self.custom(item, _line_of_item(custom_node, i), f"custom_models[{i}]")
                if model.id.lower() in seen_custom:
                    raise self.fail(f"{model.id!r} is listed twice",
                                    _line_of_item(custom_node, i), f"custom_models[{i}]")
                seen_custom.add(model.id.lower())
                customs.append(model)
        token = self.text(data, "api_token", "api_token", name=False)
        if token is not None:
            token = token.strip() or None
        return ModelConfig(
            enable=bool(self.boolean(data, "enable", "enable", False)),
            allow_unlisted=bool(self.boolean(data, "allow_unlisted", "allow_unlisted", True)),
            models=MappingProxyType(models),
            custom_models=tuple(customs),
            api_token=token,
            use_v1_api=self.boolean(data, "use_v1_api", "use_v1_api", None),
        )


def validate(data: Any, source: str | None = None) -> ModelConfig:
    """Check parsed YAML (or the admin page's JSON) against the schema."""
    return _Validator(source).config(data)


# --------------------------------------------------------------------------- output


def entry_to_json(entry: ModelEntry) -> dict[str, Any]:
    return {
        "mapping": entry.mapping,
        "enable": entry.enable,
        "replace_response": entry.replace_response,
        "tool_mode": entry.tool_mode,
        "reasoning_format": entry.reasoning_format,
        "parameters": dict(entry.parameters),
    }


def custom_to_json(model: CustomModel) -> dict[str, Any]:
    return {"id": model.id, "created": model.created, "owned_by": model.owned_by}


def config_to_json(config: ModelConfig, *, with_token: bool = False) -> dict[str, Any]:
    """Plain data for the admin page (``api_token`` left out unless asked for)."""
    out: dict[str, Any] = {
        "enable": config.enable,
        "allow_unlisted": config.allow_unlisted,
        "models": {k: entry_to_json(v) for k, v in config.models.items()},
        "custom_models": [custom_to_json(c) for c in config.custom_models],
        "use_v1_api": config.use_v1_api,
    }
    if with_token:
        out["api_token"] = config.api_token
    return out
