"""The model map in force, kept in step with models.yaml: loaded at start, watched for
edits (a changed file must settle first), reloaded on SIGHUP, saved from the admin page.

This is the model map's public face for the rest of the server:
``registry.current.resolve(name)`` gives a :class:`ResolvedModel` (or raises
:class:`~poe2openai.errors.ModelNotFound`), and ``registry.current.list_models(poe)``
shapes Poe's model list for ``/v1/models`` (the map itself: :mod:`.modelmap`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
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
from .modelconfig import ConfigError, ModelConfig
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
from .modelmap import ModelMap, openai_model
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
    "openai_model",
    "same_config",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Seconds a changed file must stay the same before a check puts it in force.
SETTLE = 0.5
#: The signature of a file that exists but cannot be looked at.
_UNREADABLE: Final[Signature] = (-1, -1, -1, -1)


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
