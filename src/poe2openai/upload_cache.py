"""Remembers what was uploaded to Poe, so a conversation uploads each file once.

An embedded SQLite file, ``$CONFIG_DIR/upload-cache.sqlite3`` (WAL mode), maps a
key to the attachment Poe gave back (``attachment_url``, MIME type, size) with an
expiry time and a last-use time. The key is a SHA-256 over the hash of the
user's API key and the file's identity (SHA-256 of its bytes, or the URL), so an
upload made with one key is never served to another, and the file holds neither
keys nor client URLs.

* Entries expire ``URL_CACHE_TTL_SECONDS`` after the upload (a hit does not
  extend it: the attachment URL ages from the upload on); expired entries are
  ignored and purged.
* ``URL_CACHE_SIZE_MB`` bounds the sum of entry sizes (decoded bytes for data,
  Poe's reported size or a nominal 1 MiB for URLs); the least recently used go
  first. A ``0`` for either setting turns the cache off.
* The file is created on the first upload. All database work runs on one worker
  thread, never on the event loop. If the file is corrupt or cannot be written,
  one warning is logged and the server carries on without the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

__all__ = ["FILE_NAME", "NOMINAL_URL_SIZE", "CacheLimits", "CachedUpload", "UploadCache",
           "cache_key",
           "user_hash"]

log = logging.getLogger(__name__)

FILE_NAME: Final = "upload-cache.sqlite3"
#: The size counted for an entry whose real size is unknown (a URL fetched by Poe).
NOMINAL_URL_SIZE: Final = 1 << 20
_SCHEMA_VERSION: Final = 1
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS uploads (
    key TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    mime TEXT NOT NULL,
    size INTEGER NOT NULL,
    expires REAL NOT NULL,
    last_used REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS uploads_last_used ON uploads (last_used);
"""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CachedUpload:
    url: str
    mime: str
    size: int


def user_hash(api_key: str) -> str:
    """Who an entry belongs to: SHA-256 of the API key (the key itself is never stored)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def cache_key(user: str, kind: str, identity: str) -> str:
    """The stored key: SHA-256 of (user hash, ``"data"``/``"url"``, content hash or URL)."""
    return hashlib.sha256(f"{user}\0{kind}\0{identity}".encode()).hexdigest()


class CacheLimits:
    """What every upload cache (this one, and Redis's in ``cluster/uploads.py``) has: its
    limits, whether it is on, and its hit and miss counts for ``/metrics``."""

    def __init__(self, ttl_seconds: int, size_mb: int) -> None:
        self.ttl = ttl_seconds
        self.budget = size_mb * (1 << 20)
        self.enabled = ttl_seconds > 0 and size_mb > 0
        self.hits = 0  #: lookups that found a live entry
        self.misses = 0

    def fits(self, size: int) -> bool:
        """Whether an upload of ``size`` bytes may be stored."""
        return self.enabled and size <= self.budget

    def counted(self, found: CachedUpload | None) -> CachedUpload | None:
        """``found``, counted as a hit or a miss."""
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found


class UploadCache(CacheLimits):
    """The upload cache of one server process (see the module docs)."""

    def __init__(self, path: Path, ttl_seconds: int, size_mb: int) -> None:
        super().__init__(ttl_seconds, size_mb)
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def get(self, key: str) -> CachedUpload | None:
        """The live entry for ``key`` (its last use is refreshed), or ``None``."""
        if not self.enabled:
            return None
        return self.counted(await self._run(self._get, None, key, time.time()))

    async def put(self, key: str, url: str, mime: str, size: int) -> None:
        """Remember an upload; evicts expired, then least recently used entries."""
        if not self.fits(size):
            return
        await self._run(self._put, None, key, url, mime, max(0, size), time.time())

    async def close(self) -> None:
        if self._executor is None:
            return
        executor, self._executor = self._executor, None
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._close)
        finally:
            executor.shutdown(wait=False)

    # -- everything below runs on the worker thread -------------------------------------

    async def _run(self, fn: Any, default: T, *args: Any) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="upload-cache")
        try:
            result: T = await asyncio.get_running_loop().run_in_executor(
                self._executor, fn, *args)
        except (sqlite3.Error, OSError) as exc:
            if self.enabled:
                self.enabled = False
                log.warning("Upload cache %s is not usable (%s: %s); running without it",
                            self.path, type(exc).__name__, exc)
            return default
        return result

    def _open(self, create: bool) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        if not create and not self.path.exists():
            return None
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Owner-only from the start: the attachment URLs are the users' files.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        conn = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"unknown schema version {version}")
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _get(self, key: str, now: float) -> CachedUpload | None:
        conn = self._open(create=False)
        if conn is None:
            return None
        row = conn.execute("SELECT url, mime, size, expires FROM uploads WHERE key = ?",
                           (key,)).fetchone()
        if row is None:
            return None
        if row[3] <= now:
            conn.execute("DELETE FROM uploads WHERE key = ?", (key,))
            return None
        conn.execute("UPDATE uploads SET last_used = ? WHERE key = ?", (now, key))
        return CachedUpload(row[0], row[1], row[2])

    def _put(self, key: str, url: str, mime: str, size: int, now: float) -> None:
        conn = self._open(create=True)
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT OR REPLACE INTO uploads (key, url, mime, size, expires, last_used) "
                "VALUES (?, ?, ?, ?, ?, ?)", (key, url, mime, size, now + self.ttl, now))
            conn.execute("DELETE FROM uploads WHERE expires <= ?", (now,))
            total = conn.execute("SELECT COALESCE(SUM(size), 0) FROM uploads").fetchone()[0]
            if total > self.budget:
                doomed: list[tuple[str]] = []
                for old_key, old_size in conn.execute(
                        "SELECT key, size FROM uploads ORDER BY last_used, key"):
                    if total <= self.budget:
                        break
                    doomed.append((old_key,))
                    total -= old_size
                conn.executemany("DELETE FROM uploads WHERE key = ?", doomed)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
