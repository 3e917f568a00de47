"""The upload cache in Redis: a file uploaded to Poe through one instance is reused by all.

The same interface and rules as :class:`poe2openai.upload_cache.UploadCache`: entries are
keyed by :func:`~poe2openai.upload_cache.cache_key` (a hash over the API key's hash and
the file's identity, so one key's uploads are never served to another and Redis holds
neither keys nor client URLs), expire ``URL_CACHE_TTL_SECONDS`` after the upload (a hit
does not extend that), and ``URL_CACHE_SIZE_MB`` bounds the sum of their sizes, least
recently used first. A ``0`` for either setting turns the cache off.

If Redis fails, a lookup is a miss (the file is uploaded again) and storing is skipped;
see :mod:`.link` for the warning and the metric. Hits and misses are counted per instance.
"""

from __future__ import annotations

import logging
from typing import Final

from ..jsonlib import dumps, loads
from ..upload_cache import CachedUpload, CacheLimits
from .link import PREFIX, RedisLink, Script, SharedStateDown

__all__ = ["SharedUploadCache"]

log = logging.getLogger(__name__)

_KEYS: Final = [PREFIX + "up:" + k for k in ("data", "used", "expires", "size", "bytes")]
#: Expired entries purged per store, at most (bounded work; the rest go next time).
_PURGE: Final = 100

_DROP = """
local function drop(k)
  local s = redis.call('HGET', KEYS[4], k)
  if s then redis.call('DECRBY', KEYS[5], s) end
  redis.call('HDEL', KEYS[1], k)
  redis.call('ZREM', KEYS[2], k)
  redis.call('ZREM', KEYS[3], k)
  redis.call('HDEL', KEYS[4], k)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# ARGV: key. The entry's JSON (its last use refreshed), or false.
_GET = Script(_DROP + """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return false end
if tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]) or '0') <= now then
  drop(ARGV[1])
  return false
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
return v
""")

# ARGV: key, value, size, ttl, budget, purge limit
_PUT = Script(_DROP + """
local key, size, ttl, budget = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
drop(key)
for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, ARGV[6])) do
  drop(old)
end
redis.call('HSET', KEYS[1], key, ARGV[2])
redis.call('ZADD', KEYS[2], now, key)
redis.call('ZADD', KEYS[3], now + ttl, key)
redis.call('HSET', KEYS[4], key, size)
local total = redis.call('INCRBY', KEYS[5], size)
while total > budget do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #oldest == 0 then break end
  drop(oldest[1])
  total = tonumber(redis.call('GET', KEYS[5]))
end
for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ttl + 60) end
return 1
""")


class SharedUploadCache(CacheLimits):
    """The upload cache of every instance (see the module docs)."""

    def __init__(self, link: RedisLink, ttl_seconds: int, size_mb: int) -> None:
        super().__init__(ttl_seconds, size_mb)
        self.link = link

    async def get(self, key: str) -> CachedUpload | None:
        """The live entry for ``key`` (its last use is refreshed), or ``None``."""
        if not self.enabled:
            return None
        found: CachedUpload | None = None
        try:
            value = await self.link.run("uploads", _GET, _KEYS, [key])
        except SharedStateDown:
            value = None
        if value:
            try:
                data = loads(value)
                found = CachedUpload(str(data["url"]), str(data["mime"]), int(data["size"]))
            except (ValueError, KeyError, TypeError):
                log.warning("An upload cache entry in Redis cannot be read; uploading again")
        return self.counted(found)

    async def put(self, key: str, url: str, mime: str, size: int) -> None:
        """Remember an upload; evicts expired, then least recently used entries."""
        if not self.fits(size):
            return
        size = max(0, size)
        value = dumps({"url": url, "mime": mime, "size": size})
        try:
            await self.link.run("uploads", _PUT, _KEYS,
                                [key, value, size, self.ttl, self.budget, _PURGE])
        except SharedStateDown:
            pass

    async def close(self) -> None:
        """Nothing to do: the link is closed by the app."""
