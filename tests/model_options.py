"""Per-model options in tests, before the models.yaml map exists: a tiny ModelMap."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from poe2openai import keys
from poe2openai.registry import DEFAULT_OPTIONS, ModelMap, ModelOptions, ResolvedModel


class OptionsMap(ModelMap):
    """Passes names through to Poe like the base map, with options per (lower-case) name."""

    def __init__(self, options: dict[str, ModelOptions]) -> None:
        self.options = {k.lower(): v for k, v in options.items()}

    def resolve(self, name: str) -> ResolvedModel:
        return ResolvedModel(requested=name, bot=name,
                             options=self.options.get(name.lower(), DEFAULT_OPTIONS))


def use_options(client: TestClient[Any, Any], options: dict[str, ModelOptions]) -> None:
    """Give these models (model name → options) their options on a running proxy."""
    client.app[keys.REGISTRY].current = OptionsMap(options)
