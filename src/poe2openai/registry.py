"""Which Poe bot serves a requested model name, with what options.

This is the model map's public face for the rest of the server:
``registry.current.resolve(name)`` gives a :class:`ResolvedModel` (or raises
:class:`~poe2openai.errors.ModelNotFound`), and ``registry.current.list_models(poe)``
shapes Poe's model list for ``/v1/models``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from .configfile import (
    MISSING,
    FileSnapshot,
    FileTooLarge,
    Signature,
    read_snapshot,
    signature,
    version_of,
)
from .errors import ModelNotFound
from .modelconfig import ConfigError, CustomModel, ModelConfig
from .modelfile import (
    KEEP,
    MAX_FILE_SIZE,
    ConfigConflict,
    _Keep,
    default_text,
    parse_file,
    same_config,
    save_file,
    too_large,
)
from .modeloptions import DEFAULT_OPTIONS, ModelOptions, ReasoningFormat, ResolvedModel, ToolMode

__all__ = [
    "DEFAULT_OPTIONS",
    "KEEP",
    "ConfigConflict",
    "ModelMap",
    "ModelOptions",
    "ModelRegistry",
    "ReasoningFormat",
    "ResolvedModel",
    "ToolMode",
    "default_text",
    "same_config",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Seconds a changed file must stay the same before a check puts it in force.
SETTLE = 0.5
#: The signature of a file that exists but cannot be looked at.
_UNREADABLE: Final[Signature] = (-1, -1, -1, -1)


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


class ModelRegistry:
    """Holds the current :class:`ModelMap` and keeps it in step with models.yaml.

    ``current`` is replaced as a whole, never changed in place, so a request
    (or a stream in flight) keeps the map it resolved its model with. An
    invalid file keeps the last good map; ``last_error`` says what is wrong
    until it is fixed. Every file access and parse runs in a worker thread,
    and a parse is abandoned when the task waiting for it is cancelled.

    A file is parsed only when its signature changed. A change seen by
    :meth:`refresh` (the watcher, the admin page) is applied only once the
    file has stayed the same for :data:`SETTLE` seconds, so a file caught
    half-written is never put in force.
    """

    def __init__(self, path: Path | None = None, current: ModelMap | None = None) -> None:
        self.path = path
        self.current: ModelMap = current or ModelMap()
        #: Version token (hash) of the file content behind ``current``.
        self.version: str = MISSING
        #: Why the file on disk is not in use, or None.
        self.last_error: ConfigError | None = None
        #: The file state last dealt with (applied, refused or missing: None).
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
        """Read the file now and apply it as it is (start, SIGHUP). True if it is in use."""
        async with self._lock:
            snap = await self._read()
            if snap is not None and not snap.unstable:
                await self._apply(snap)
        return self.last_error is None

    async def refresh(self, *, debounce_missing: bool = False) -> None:
        """Reload if the file changed (size, mtime or inode) since it was last read,
        once it has stopped changing. Never waits for a load already running.

        With ``debounce_missing`` a file must be missing on two checks in a row
        before the defaults replace it: editors that save by rename leave a
        moment with no file at all.
        """
        if self.path is None or self._lock.locked():
            return
        async with self._lock:
            sig = await asyncio.to_thread(_stat, self.path)
            if self._loaded and sig == self._sig:
                self._missing_seen = False
                return
            if sig is None:
                if debounce_missing and self._sig is not None and not self._missing_seen:
                    self._missing_seen = True
                else:
                    self._use_defaults()
                return
            self._missing_seen = False
            first = await self._read()
        if first is None:
            return
        await asyncio.sleep(SETTLE)  # the file must stay the same this long
        async with self._lock:
            if self._loaded and self._sig == first.sig:
                return  # a save or another check dealt with it meanwhile
            second = await self._read()
            if second is None or second.unstable or second.sig != first.sig \
                    or second.data != first.data:
                return  # still being written: the next check looks again
            await self._apply(second)

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

    async def _read(self) -> FileSnapshot | None:
        """The file's content, or None (and ``last_error`` set) when it cannot be read."""
        assert self.path is not None
        try:
            return await asyncio.to_thread(read_snapshot, self.path, MAX_FILE_SIZE)
        except OSError as exc:
            # Remember this state of the file, so it is not read again until it
            # changes (deleting it is a change too).
            self._sig = await asyncio.to_thread(_stat, self.path)
            self._missing_seen = False
            if isinstance(exc, FileTooLarge):
                message = too_large()
            else:
                message = f"cannot read the file: {exc.strerror or exc}"
            self._fail(ConfigError(message, source=self.source))
            return None

    async def _apply(self, snap: FileSnapshot) -> None:
        """Parse ``snap`` and put it in force, or keep the last good map and say why."""
        self._missing_seen = False
        if snap.data is None:
            self._use_defaults()
            return
        log.debug("Parsing %s (%d bytes)", self.source, len(snap.data))
        try:
            config = await _in_thread(parse_file, snap.data, self.source)
        except ConfigError as err:
            self._sig = snap.sig
            self._fail(err)
            return
        except Exception as exc:  # a bug, not a bad file: still never parsed again as is
            log.debug("Loading %s failed", self.source, exc_info=True)
            self._sig = snap.sig
            self._fail(ConfigError(f"could not be loaded ({type(exc).__name__}: {exc})",
                                   source=self.source))
            return
        verb = ("Fixed, reloaded" if self.last_error is not None
                else "Reloaded" if self._loaded else "Loaded")
        self._put(config, snap.version, snap.sig)
        log.info("%s %s: %s", verb, self.source, self.current.summary())

    def _put(self, config: ModelConfig, version: str, sig: Signature | None) -> None:
        self._sig = sig
        self.current = ModelMap(config)
        self.version = version
        self.last_error = None
        self._logged = None
        self._loaded = True

    def _use_defaults(self) -> None:
        had_file = self._loaded and (self.version != MISSING or self.last_error is not None)
        was_loaded = self._loaded
        self._put(ModelConfig(), MISSING, None)
        if had_file:
            log.warning("%s was deleted: using the defaults (every model name goes to Poe as "
                        "is) until it is created again", self.source)
        elif not was_loaded:
            log.info("No %s: every model name goes to Poe as is (create the file, or use "
                     "/admin, to map models)", self.source)

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
        """Write ``config`` to the file as minimal edits, atomically, and put it in force.

        ``version`` is the token of the content the caller based its edits on;
        if the file changed since, or changes while the save is being made,
        :class:`ConfigConflict` is raised and nothing is written. Saves run one
        at a time. ``api_token``: a new token, None to remove it, or KEEP.
        """
        if self.path is None:
            raise ConfigConflict("There is no models.yaml path to save to.")
        async with self._save_lock:
            result, data, sig = await _in_thread(save_file, self.path, config, version,
                                                 api_token, error=self.last_error)
            async with self._lock:
                self._put(result, version_of(data), sig)
                self._missing_seen = False
            log.info("Saved %s: %s", self.source, self.current.summary())


async def _in_thread(func: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``func(*args, **kwargs, cancel=event)`` in a worker thread; the event is set
    when the caller stops waiting (cancelled, e.g. at shutdown), so the work stops too."""
    cancel = threading.Event()
    try:
        return await asyncio.to_thread(func, *args, **kwargs, cancel=cancel)
    finally:
        cancel.set()


def _stat(path: Path) -> Signature | None:
    """The file's signature; None when missing; a fixed marker when it cannot
    be looked at (a change from it to anything else is noticed)."""
    try:
        return signature(path)
    except OSError:
        return _UNREADABLE


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
