"""``RATE_LIMIT_MS`` spacing held in Redis: one schedule per API key for every instance.

The same rule as :class:`poe2openai.api.ratelimit.RateLimiter`: a request waits for its
key's turn, and one that would wait more than ``MAX_WAIT`` seconds gets 429 at once. One
Lua script books the turn (Redis's clock, so instances agree); the wait itself is an
``asyncio.sleep`` here. The key is stored as a SHA-256 hash. If Redis fails, the request
goes at once (fail open; see :mod:`.link`).
"""

from __future__ import annotations

import asyncio
import math

from ..api.ratelimit import MAX_WAIT, RateLimiter
from ..errors import RateLimited
from ..upload_cache import user_hash
from .link import PREFIX, RedisLink, Script, SharedStateDown

__all__ = ["SharedSpacing"]

# KEYS[1]: the key's next free start (ms); ARGV: interval ms, longest wait ms.
_BOOK = Script("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local start = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local delay = start - now
if delay > tonumber(ARGV[2]) then return -delay end
redis.call('SET', KEYS[1], start + tonumber(ARGV[1]), 'PX', delay + tonumber(ARGV[1]) + 1000)
return delay
""")


class SharedSpacing(RateLimiter):
    def __init__(self, link: RedisLink, interval_ms: int) -> None:
        super().__init__(interval_ms)
        self.link = link
        self._ms = interval_ms

    async def wait(self, api_key: str) -> None:
        """Wait for this key's turn (no-op when the limit is off)."""
        if self.interval <= 0:
            return
        key = PREFIX + "space:" + user_hash(api_key)[:32]
        try:
            delay_ms = int(await self.link.run("spacing", _BOOK, [key],
                                               [self._ms, int(MAX_WAIT * 1000)]))
        except SharedStateDown:
            return  # fail open
        if delay_ms < 0:
            wait = math.ceil(-delay_ms / 1000)
            raise RateLimited(
                f"Too many requests with this API key (RATE_LIMIT_MS); retry in {wait} s.",
                headers={"retry-after": str(wait)})
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
