"""Which Poe bot serves a requested model name, with what options.

This is the model map's public face for the rest of the server:
``registry.current.resolve(name)`` gives a :class:`ResolvedModel` (or raises
:class:`~poe2openai.errors.ModelNotFound`), and ``registry.current.list_models(poe)``
shapes Poe's model list for ``/v1/models``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

from .configfile import MISSING, Signature, atomic_write, read_snapshot, signature
from .errors import ModelNotFound
from .modelconfig import ConfigError, CustomModel, ModelConfig, parse_yaml
from .modeloptions import DEFAULT_OPTIONS, ModelOptions, ReasoningFormat, ResolvedModel, ToolMode
from .yamledit import apply_config

__all__ = ["KEEP", "ConfigConflict", "ModelMap", "ModelOptions", "ModelRegistry",
           "ResolvedModel", "default_text", "same_config"]

log = logging.getLogger(__name__)

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


class ConfigConflict(Exception):
    """The file changed on disk since the admin page loaded it (HTTP 409)."""


class _Keep:
    """Marker: keep the api_token that is in the file."""


KEEP: Final = _Keep()


class ModelRegistry:
    """Holds the current :class:`ModelMap` and keeps it in step with models.yaml.

    ``current`` is replaced as a whole, never changed in place, so a request
    (or a stream in flight) keeps the map it resolved its model with. An
    invalid file keeps the last good map; ``last_error`` says what is wrong
    until it is fixed. Every file access runs in a worker thread.
    """

    def __init__(self, path: Path | None = None, current: ModelMap | None = None) -> None:
        self.path = path
        self.current: ModelMap = current or ModelMap()
        #: Version token (hash) of the file content behind ``current``.
        self.version: str = MISSING
        #: Why the file on disk is not in use, or None.
        self.last_error: ConfigError | None = None
        self._sig: Signature | None = None
        self._loaded = False
        self._missing_seen = False
        self._logged: str | None = None
        self._lock = asyncio.Lock()  # one load at a time
        self._save_lock = asyncio.Lock()  # one save at a time

    @property
    def source(self) -> str:
        return str(self.path) if self.path is not None else "models.yaml"

    # ---------------------------------------------------------------- loading

    async def load_now(self) -> bool:
        """Read the file now (start, SIGHUP, after a save). True if it is in use."""
        async with self._lock:
            await self._load()
        return self.last_error is None

    async def refresh(self, *, debounce_missing: bool = False) -> None:
        """Reload if the file changed (size, mtime or inode) since it was last read.

        With ``debounce_missing`` a file must be missing on two checks in a row
        before the defaults replace it: editors that save by rename leave a
        moment with no file at all.
        """
        if self.path is None:
            return
        async with self._lock:
            try:
                sig = await asyncio.to_thread(signature, self.path)
            except OSError:
                sig = None
            else:
                if self._loaded and sig == self._sig:
                    self._missing_seen = False
                    return
                if sig is None and debounce_missing and self._sig is not None \
                        and not self._missing_seen:
                    self._missing_seen = True
                    return
            await self._load()

    async def watch(self, interval: float) -> None:
        """Poll the file every ``interval`` seconds until cancelled. Never raises."""
        failed: str | None = None
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh(debounce_missing=True)
                failed = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if repr(exc) != failed:
                    failed = repr(exc)
                    log.exception("Checking %s for changes failed", self.source)

    async def _load(self) -> None:
        self._missing_seen = False
        if self.path is None:
            self._loaded = True
            return
        try:
            snap = await asyncio.to_thread(read_snapshot, self.path)
        except OSError as exc:
            self._sig = None
            self._fail(ConfigError(f"cannot read the file: {exc.strerror or exc}",
                                   source=self.source))
            return
        if snap.data is None:
            self._use_defaults()
            return
        try:
            config = await asyncio.to_thread(_parse, snap.data, self.source)
        except ConfigError as err:
            if snap.unstable:  # being written right now: look again at the next check
                return
            self._sig = snap.sig
            self._fail(err)
            return
        if snap.unstable:
            return
        self._sig = snap.sig
        verb = ("Fixed, reloaded" if self.last_error is not None
                else "Reloaded" if self._loaded else "Loaded")
        self.current = ModelMap(config)
        self.version = snap.version
        self.last_error = None
        self._logged = None
        self._loaded = True
        log.info("%s %s: %s", verb, self.source, self.current.summary())

    def _use_defaults(self) -> None:
        had_file = self._loaded and (self.version != MISSING or self.last_error is not None)
        self._sig = None
        self.current = ModelMap()
        self.version = MISSING
        self.last_error = None
        self._logged = None
        if had_file:
            log.warning("%s was deleted: using the defaults (every model name goes to Poe as "
                        "is) until it is created again", self.source)
        elif not self._loaded:
            log.info("No %s: every model name goes to Poe as is (create the file, or use "
                     "/admin, to map models)", self.source)
        self._loaded = True

    def _fail(self, err: ConfigError) -> None:
        self.last_error = err
        self._loaded = True
        text = err.describe()
        if text != self._logged:
            self._logged = text
            log.error("%s (the last good model map stays in use until this is fixed)", text)

    # ---------------------------------------------------------------- saving

    async def save(self, config: ModelConfig, version: str,
                   api_token: str | _Keep | None = KEEP) -> None:
        """Write ``config`` to the file as minimal edits, atomically, and load it.

        ``version`` is the token of the content the caller based its edits on;
        if the file changed since, :class:`ConfigConflict` is raised and nothing
        is written. Saves run one at a time. ``api_token``: a new token, None to
        remove it, or KEEP.
        """
        if self.path is None:
            raise ConfigConflict("There is no models.yaml path to save to.")
        async with self._save_lock:
            await asyncio.to_thread(self._write, config, version, api_token)
            await self.load_now()

    def _write(self, config: ModelConfig, version: str, api_token: str | _Keep | None) -> None:
        assert self.path is not None
        snap = read_snapshot(self.path)
        if snap.version != version:
            if self.last_error is not None:
                raise ConfigConflict(
                    f"{self.path.name} has an error ({self.last_error.describe()}). "
                    "Fix it in the file first; the page cannot save over it.")
            raise ConfigConflict(
                f"{self.path.name} was changed on disk after this page loaded it. "
                "Reload to see the changes; saving now would overwrite them.")
        text = _decode(snap.data, self.source) if snap.data is not None else default_text()
        on_disk = parse_yaml(text, self.source)
        final = dataclasses.replace(
            config,
            api_token=on_disk.api_token if isinstance(api_token, _Keep) else api_token,
            use_v1_api=on_disk.use_v1_api,
        )
        new_text = apply_config(text, final)
        if not same_config(parse_yaml(new_text, self.source), final):  # pragma: no cover
            raise RuntimeError("editing models.yaml gave a different result than asked for")
        atomic_write(self.path, new_text.encode("utf-8"), private=final.api_token is not None)


def same_config(a: ModelConfig, b: ModelConfig) -> bool:
    """Equal in meaning (custom models compared by id, in any order)."""
    return (
        a.enable == b.enable and a.allow_unlisted == b.allow_unlisted
        and a.api_token == b.api_token and a.use_v1_api == b.use_v1_api
        and dict(a.models) == dict(b.models)
        and {c.id: c for c in a.custom_models} == {c.id: c for c in b.custom_models}
    )


def default_text() -> str:
    """The shipped, commented models.yaml (the start of a file the admin page creates)."""
    return resources.files("poe2openai").joinpath("data/models.yaml").read_text("utf-8")


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (bad byte at offset {exc.start})",
                          source=source) from None


def _parse(data: bytes, source: str) -> ModelConfig:
    return parse_yaml(_decode(data, source), source)


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
