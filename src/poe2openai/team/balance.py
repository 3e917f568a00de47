"""The Poe point balance of the server-held key (``POE_API_KEY``), and the low-balance
guard: below ``POE_MIN_POINTS``, new requests get 402.

The balance is asked of Poe (``GET /usage/current_balance``, free) at most once per
``ttl`` seconds. A request never waits for a refresh, except the very first ones,
which wait for the first answer (at most ``first_wait`` seconds). When Poe cannot
tell, the last known balance is kept; with none known, requests are let through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from ..errors import ProxyError
from .errors import LowBalance

__all__ = ["BalanceGuard"]

log = logging.getLogger(__name__)


class BalanceGuard:
    def __init__(self, fetch: Callable[[], Awaitable[int]], min_points: int, *,
                 ttl: float = 60.0, first_wait: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self.min_points = min_points
        self.ttl = ttl
        self.first_wait = first_wait
        self.clock = clock
        self.balance: int | None = None
        self.checked_at: float | None = None  #: wall-clock time of the last answer
        self.last_error: str | None = None
        self._fetched: float | None = None  # clock() of the last attempt
        self._task: asyncio.Task[None] | None = None
        #: Called with every balance Poe reports (the metrics gauge).
        self.on_balance: list[Callable[[int], None]] = []

    async def check(self) -> None:
        """Raise :class:`LowBalance` when the balance is known to be below the minimum."""
        if self.min_points <= 0:
            return
        self._refresh_if_stale()
        if self.balance is None and self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), self.first_wait)
        if self.balance is not None and self.balance < self.min_points:
            raise LowBalance(
                f"This server's Poe account has {self.balance} points left, below its "
                f"minimum of {self.min_points} (POE_MIN_POINTS); new requests are refused "
                "until points are added.")

    async def current(self, *, refresh: bool = False) -> int | None:
        """The balance, refreshed first when stale (or when asked)."""
        if refresh:
            self._fetched = None
        self._refresh_if_stale()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), self.first_wait)
        return self.balance

    def _refresh_if_stale(self) -> None:
        if self._task is not None:
            return
        if self._fetched is not None and self.clock() - self._fetched < self.ttl:
            return
        self._fetched = self.clock()
        self._task = asyncio.create_task(self._refresh(), name="Poe balance")

    async def _refresh(self) -> None:
        try:
            value = await self._fetch()
        except ProxyError as err:
            if err.message != self.last_error:
                log.warning("Cannot get the Poe point balance: %s", err.message)
            self.last_error = err.message
        else:
            if self.balance is None or (value < self.min_points) != \
                    (self.balance < self.min_points):
                log.info("Poe point balance: %d%s", value,
                         f" (below POE_MIN_POINTS={self.min_points}: refusing requests)"
                         if value < self.min_points else "")
            self.balance = value
            self.checked_at = time.time()
            self.last_error = None
            for hook in self.on_balance:
                hook(value)
        finally:
            self._task = None

    async def close(self) -> None:
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
