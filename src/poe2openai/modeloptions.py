"""Per-model options and the resolved model: plain data shared by the model map and the
pure translation core (no YAML, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["DEFAULT_OPTIONS", "ModelOptions", "ReasoningFormat", "ResolvedModel", "ToolMode"]

ToolMode = Literal["native", "xml"]
ReasoningFormat = Literal["reasoning_content", "think", "hidden"]


@dataclass(frozen=True, slots=True)
class ModelOptions:
    """Per-model behaviour (from models.yaml; defaults for bots not listed there)."""

    #: The original project's flag for media bots: system messages are sent as user messages.
    replace_response: bool = False
    #: How tools reach the bot: Poe's native ``tools`` field, or an XML protocol in the prompt.
    tool_mode: ToolMode = "native"
    #: Where Poe's "Thinking..." text goes: ``reasoning_content``, inline ``<think>``, or nowhere.
    reasoning_format: ReasoningFormat = "reasoning_content"
    #: Default Poe bot parameters (protocol 1.2), overridden by the request's own.
    parameters: dict[str, Any] = field(default_factory=dict)


DEFAULT_OPTIONS = ModelOptions()


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    requested: str  #: the name the client sent (echoed in responses)
    bot: str  #: the Poe bot that answers
    options: ModelOptions = DEFAULT_OPTIONS
