"""The proxy keys the server accepts, kept in step with ``$CONFIG_DIR/proxy-keys.json``
by polling (inode, size, mtime) and by :meth:`KeyStore.reload` (SIGHUP), which reads
the file whatever its size and time say. See :mod:`poe2openai.team.keyfile`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..configfile import Signature, read_snapshot, signature, version_of
from .keyfile import (
    SECRET_PREFIX,
    KeyError_,
    KeyRecord,
    create_key,
    digest_of,
    format_time,
    parse_keys,
    revoke_key,
)

__all__ = ["KeyStore"]

log = logging.getLogger(__name__)

#: Longest presented key that is hashed at all (ours are 47 characters).
_MAX_SECRET_LEN = 512

class KeyStore:
    """The keys the server accepts, kept in step with the file (polling and SIGHUP)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self.records: tuple[KeyRecord, ...] = ()
        self._by_digest: dict[str, KeyRecord] = {}
        self.version: str | None = None  #: content hash of the file in use
        self.last_error: str | None = None
        self.loaded = False  #: a load succeeded (or there was no file)
        #: Called after every load attempt with True (read and in use) or False (failed).
        self.on_reload: list[Callable[[bool], None]] = []
        self._sig: Signature | None = None
        self._lock = asyncio.Lock()

    @property
    def empty(self) -> bool:
        """No keys: clients' own Poe keys pass through. False while a broken file
        was never loaded, so a damaged file never opens the server up."""
        return self.loaded and not self.records

    def authenticate(self, secret: str | None) -> KeyRecord | None:
        """The active key for a presented secret, or None (see :meth:`check`)."""
        return self.check(secret)[0]

    def check(self, secret: str | None) -> tuple[KeyRecord | None, str]:
        """``(record, "")`` for an active key, else ``(None, reason for a 401)``."""
        if not self.loaded:
            return None, (f"The server cannot read its proxy keys ({self.last_error}); "
                          "ask its admin.")
        if not secret:
            return None, ("Missing API key: send your proxy key as 'Authorization: Bearer "
                          "<key>' or 'x-api-key: <key>'.")
        if len(secret) > _MAX_SECRET_LEN or not secret.startswith(SECRET_PREFIX):
            return None, "Unknown API key: this server needs one of its proxy keys (p2o-…)."
        # A dict lookup by SHA-256: timing can at most tell an attacker about the hash of
        # what they sent, never about a stored secret (finding a preimage is infeasible).
        record = self._by_digest.get(digest_of(secret))
        if record is None:
            return None, "Unknown API key."
        if record.revoked is not None:
            return None, f"The API key {record.name!r} was revoked."
        if record.expired(self.clock()):
            return None, f"The API key {record.name!r} expired at {format_time(record.expires)}."
        return record, ""

    def get(self, name: str) -> KeyRecord | None:
        low = name.lower()
        return next((r for r in self.records if r.name.lower() == low), None)

    # -------------------------------------------------------------- loading

    async def load_now(self) -> bool:
        """Read the file now, whatever its size and time say (start, SIGHUP, after a write)."""
        async with self._lock:
            return await self._load()

    reload = load_now

    async def refresh(self) -> None:
        """Reload if the file's identity (inode, size, mtime) changed."""
        async with self._lock:
            try:
                sig = await asyncio.to_thread(signature, self.path)
            except OSError:
                sig = None
            if not self.loaded or sig != self._sig:
                await self._load()

    async def watch(self, interval: float) -> None:
        """Poll the file every ``interval`` seconds until cancelled. Never raises."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # pragma: no cover - a bug, not a bad file
                log.exception("Checking %s for changes failed", self.path)

    async def _load(self) -> bool:
        try:
            snap = await asyncio.to_thread(read_snapshot, self.path)
        except OSError as exc:
            self._sig = None
            return self._failed(exc.strerror or str(exc))
        try:
            records = [] if snap.data is None else await asyncio.to_thread(parse_keys, snap.data)
        except KeyError_ as exc:
            if snap.unstable:
                return False  # caught mid-write: the next check sees the whole file
            self._sig = snap.sig
            return self._failed(str(exc))
        if snap.unstable:
            return False
        self._sig = snap.sig
        version = version_of(snap.data) if snap.data is not None else None
        changed = version != self.version or not self.loaded
        self.records = tuple(records)
        self._by_digest = {r.digest: r for r in records}
        self.version = version
        self.last_error = None
        self.loaded = True
        if changed:
            active = sum(1 for r in records if r.state(self.clock()) == "active")
            log.info("Proxy keys: %s", f"{active} active of {len(records)} in {self.path}"
                     if records else "none (clients' own Poe keys are passed through)")
        self._notify(True)
        return True

    def _failed(self, text: str) -> bool:
        if text != self.last_error:
            log.error("%s: %s (%s)", self.path, text,
                      "the last good keys stay in use" if self.loaded
                      else "no proxy key is accepted until this is fixed")
        self.last_error = text
        self._notify(False)
        return False

    def _notify(self, ok: bool) -> None:
        for hook in self.on_reload:
            hook(ok)

    # -------------------------------------------------------------- writes (admin page)

    async def create(self, name: str, **fields: Any) -> tuple[KeyRecord, str]:
        record, secret = await asyncio.to_thread(create_key, self.path, name, **fields)
        await self.load_now()
        return record, secret

    async def revoke(self, name: str) -> KeyRecord:
        record = await asyncio.to_thread(revoke_key, self.path, name)
        await self.load_now()
        return record
