"""``RATE_LIMIT_MS``: spacing between the chat requests of one API key.

The original project spaced the starts of *all* chat requests with one global lock
held while sleeping, so one busy user slowed everyone down. Here each API key has its
own schedule, nothing is locked, and a request that would have to wait longer than
``MAX_WAIT`` seconds is refused at once with 429 and ``retry-after``.
"""

from __future__ import annotations

import asyncio
import math

from ..errors import RateLimited

__all__ = ["MAX_WAIT", "RateLimiter"]

#: A request never queues longer than this; beyond it the client gets 429.
MAX_WAIT = 30.0
_PRUNE_AT = 10_000


class RateLimiter:
    def __init__(self, interval_ms: int) -> None:
        self.interval = interval_ms / 1000
        self._next: dict[str, float] = {}  # API key -> earliest start of its next request

    async def wait(self, api_key: str) -> None:
        """Wait for this key's turn (no-op when the limit is off)."""
        if self.interval <= 0:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self._next.get(api_key, now))
        delay = start - now
        if delay > MAX_WAIT:
            raise RateLimited(
                f"Too many requests with this API key (RATE_LIMIT_MS); retry in "
                f"{math.ceil(delay)} s.", headers={"retry-after": str(math.ceil(delay))})
        if len(self._next) >= _PRUNE_AT:
            self._next = {k: t for k, t in self._next.items() if t > now}
        self._next[api_key] = start + self.interval
        if delay > 0:
            await asyncio.sleep(delay)
