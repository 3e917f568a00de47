"""Which Poe bot serves a requested model name, with what options.

This is the model map's public face for the rest of the server:
``registry.current.resolve(name)`` gives a :class:`ResolvedModel` (or raises
:class:`~poe2openai.errors.ModelNotFound`), and ``registry.current.list_models(poe)``
shapes Poe's model list for ``/v1/models``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ModelMap", "ModelOptions", "ModelRegistry", "ResolvedModel"]

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


class ModelMap:
    """An immutable model map. This base one passes every name through to Poe."""

    def resolve(self, name: str) -> ResolvedModel:
        return ResolvedModel(requested=name, bot=name)

    def list_models(self, poe_models: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """OpenAI-shaped entries for ``/v1/models`` from Poe's raw list."""
        return [openai_model(m) for m in poe_models]


class ModelRegistry:
    """Holds the current :class:`ModelMap`; swapped as a whole on reload."""

    def __init__(self, current: ModelMap | None = None) -> None:
        self.current: ModelMap = current or ModelMap()


def openai_model(m: dict[str, Any], model_id: str | None = None) -> dict[str, Any]:
    """One Poe ``/v1/models`` entry in OpenAI's shape (``created`` in seconds)."""
    created = m.get("created")
    if not isinstance(created, int | float) or isinstance(created, bool):
        created = 0
    elif created > 100_000_000_000:  # Poe sends milliseconds
        created = created / 1000
    owned_by = m.get("owned_by")
    out: dict[str, Any] = {
        "id": model_id or m["id"],
        "object": "model",
        "created": int(created),
        "owned_by": owned_by if isinstance(owned_by, str) and owned_by else "poe",
    }
    return out
