"""The model map: which Poe bot serves a requested model name, with what options, and how
Poe's model list is shown. Built from one parsed models.yaml; never changes after."""

from __future__ import annotations

import time
from typing import Any

from .errors import ModelNotFound
from .modelconfig import CustomModel, ModelConfig
from .modeloptions import ModelOptions, ResolvedModel

__all__ = ["ModelMap", "openai_model"]


class ModelMap:
    """An immutable model map built from one parsed models.yaml.

    ``ModelMap()`` (no config, or ``enable: false``) passes every name through
    to Poe and lists Poe's models unchanged.
    """

    #: The parsed models.yaml. Class-level defaults too, so a subclass that does not
    #: call ``__init__`` (tests/model_options.py) still behaves like the base map.
    config: ModelConfig = ModelConfig()
    #: Poe key for fetching the model list (``api_token``), or None.
    api_token: str | None = None

    def __init__(self, config: ModelConfig | None = None, *, created: int | None = None) -> None:
        self.config = config or ModelConfig()
        self.api_token = self.config.api_token
        #: ``created`` of custom models that do not set one: when this map was loaded.
        self._created = int(time.time()) if created is None else created
        self._alias: dict[str, str] = {}  # lower-case alias -> bot key
        self._bots: dict[str, str] = {}  # lower-case bot key -> bot key
        self._options: dict[str, ModelOptions] = {}
        self._custom: dict[str, CustomModel] = {}
        for key, entry in self.config.models.items():
            self._bots[key.lower()] = key
            if entry.mapping:
                self._alias[entry.mapping.lower()] = key
            self._options[key] = ModelOptions(
                replace_response=entry.replace_response,
                tool_mode=entry.tool_mode,  # type: ignore[arg-type]
                reasoning_format=entry.reasoning_format,  # type: ignore[arg-type]
                parameters=dict(entry.parameters),
            )
        for custom in self.config.custom_models:
            self._custom.setdefault(custom.id.lower(), custom)

    @property
    def enabled(self) -> bool:
        return self.config.enable

    def resolve(self, name: str) -> ResolvedModel:
        """The Poe bot for a requested name (aliases and bot names match in any case).

        Raises :class:`ModelNotFound` for a disabled model, and for a name the
        config does not list when ``allow_unlisted`` is false.
        """
        if not self.config.enable:
            return ResolvedModel(requested=name, bot=name)
        low = name.lower()
        key = self._alias.get(low) or self._bots.get(low)
        if key is not None:
            if not self.config.models[key].enable:
                raise ModelNotFound(f"The model '{name}' is disabled on this server.",
                                    param="model")
            return ResolvedModel(requested=name, bot=key, options=self._options[key])
        custom = self._custom.get(low)
        if custom is not None:
            return ResolvedModel(requested=name, bot=custom.id)
        if self.config.allow_unlisted:
            return ResolvedModel(requested=name, bot=name)
        raise ModelNotFound(f"The model '{name}' does not exist or is not available on this "
                            "server.", param="model")

    def list_models(self, poe_models: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """OpenAI-shaped entries for ``/v1/models`` from Poe's raw list: disabled
        models left out, aliased ones renamed, custom ones added."""
        if not self.config.enable:
            return [openai_model(m) for m in poe_models]
        models = self.config.models
        # Every alias claims its name, a disabled model's too (requests for it get 404),
        # so a Poe bot of the same name is not listed: the list and resolve() agree.
        aliases = {e.mapping.lower() for e in models.values() if e.mapping}
        out: list[dict[str, Any]] = []
        seen: set[str] = set()

        def add(entry: dict[str, Any]) -> None:
            if entry["id"].lower() not in seen:
                seen.add(entry["id"].lower())
                out.append(entry)

        for raw in poe_models:
            key = self._bots.get(raw["id"].lower())
            entry = models[key] if key is not None else None
            if entry is not None and not entry.enable:
                continue
            if entry is not None and entry.mapping:
                add(openai_model(raw, entry.mapping))
                continue
            if raw["id"].lower() in aliases:
                continue  # another bot's alias wears this name; requests go there
            if entry is None and not self.config.allow_unlisted \
                    and raw["id"].lower() not in self._custom:
                continue
            add(openai_model(raw))
        for custom in self.config.custom_models:
            key = self._bots.get(custom.id.lower())
            entry = models[key] if key is not None else None
            if entry is not None and not entry.enable:
                continue
            if entry is not None and entry.mapping:
                name = entry.mapping
            elif custom.id.lower() in aliases:
                continue
            else:
                name = custom.id
            add({
                "id": name,
                "object": "model",
                "created": self._created if custom.created is None else int(custom.created),
                "owned_by": custom.owned_by or "poe",
            })
        # An alias for a bot Poe's list does not show (a private bot, or the list is
        # unavailable) still names a model clients can use: list it too.
        listed = {m["id"].lower() for m in poe_models}
        for key, entry in models.items():
            if entry.enable and entry.mapping and key.lower() not in listed \
                    and key.lower() not in self._custom:
                add({"id": entry.mapping, "object": "model", "created": self._created,
                     "owned_by": "poe"})
        return out

    def summary(self) -> str:
        cfg = self.config
        if not cfg.enable:
            return "map off (enable is false): every name goes to Poe as is"
        aliases = sum(1 for e in cfg.models.values() if e.mapping)
        disabled = sum(1 for e in cfg.models.values() if not e.enable)
        return (f"{len(cfg.models)} models ({aliases} aliased, {disabled} disabled), "
                f"{len(cfg.custom_models)} custom, unlisted names "
                + ("allowed" if cfg.allow_unlisted else "refused"))


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
