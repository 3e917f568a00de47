"""Per-key limits: requests per minute, concurrent requests, and requests per UTC day.

``async with limits.admit(record):`` either admits a request at once or raises:

* the day's budget is used up: :class:`DailyBudgetUsed` (429, ``x-should-retry: false``,
  ``Retry-After`` until 00:00 UTC);
* more than ``rpm`` starts in the last 60 seconds (a sliding window):
  :class:`~poe2openai.errors.RateLimited` (429, ``Retry-After`` until the oldest start
  leaves the window);
* ``concurrency`` requests already open: ``RateLimited`` (429, ``Retry-After: 1``).

A refused request uses up nothing. An admitted one counts against the minute and the
day when it starts, whatever its outcome. All checks run without awaiting, so
concurrent requests on one event loop can never overshoot a limit. Counts live in
memory; :meth:`Limits.seed_daily` restores today's counts from the usage log at start.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType

from ..errors import RateLimited
from .errors import DailyBudgetUsed
from .keyfile import KeyRecord

__all__ = ["WINDOW", "Limits", "daily_used", "day_number", "seconds_to_midnight", "too_many_a_minute",
           "too_many_open"]

#: The rpm window, in seconds.
WINDOW = 60.0


def day_number(ts: float) -> int:
    """The UTC day of a Unix time (days since 1970-01-01)."""
    return int(ts // 86400)


def seconds_to_midnight(ts: float) -> int:
    return max(1, math.ceil((day_number(ts) + 1) * 86400 - ts))


class _KeyState:
    __slots__ = ("active", "day", "starts", "used")

    def __init__(self, day: int) -> None:
        self.starts: deque[float] = deque()  # admission times within the window
        self.active = 0
        self.day = day
        self.used = 0  # admitted requests on ``day``


class _Admission:
    __slots__ = ("_limits", "_record", "_state")

    def __init__(self, limits: Limits, record: KeyRecord | None) -> None:
        self._limits = limits
        self._record = record
        self._state: _KeyState | None = None

    async def __aenter__(self) -> None:
        if self._record is not None:
            self._state = self._limits.take(self._record)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._state is not None:
            self._state.active -= 1
            self._state = None


class Limits:
    """The limit state of every proxy key (by name), for one server process."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._keys: dict[str, _KeyState] = {}

    def admit(self, record: KeyRecord | None) -> _Admission:
        """``async with``: check and take a slot on entry, free the concurrency slot on
        exit. ``None`` (no proxy key: pass-through) is never limited."""
        return _Admission(self, record)

    def take(self, record: KeyRecord) -> _KeyState | None:
        """Check the limits and count one request (or raise); see the module docs. A key
        without limits is counted too (the dashboard shows its use)."""
        now = self.clock()
        today = day_number(now)
        state = self._keys.get(record.name)
        if state is None:
            state = self._keys[record.name] = _KeyState(today)
        if state.day != today:
            state.day, state.used = today, 0
        if record.daily and state.used >= record.daily:
            raise daily_used(record, today, seconds_to_midnight(now))
        starts = state.starts
        while starts and starts[0] <= now - WINDOW:
            starts.popleft()
        if record.rpm and len(starts) >= record.rpm:
            raise too_many_a_minute(record, max(1, math.ceil(starts[0] + WINDOW - now)))
        if record.concurrency and state.active >= record.concurrency:
            raise too_many_open(record)
        if record.rpm:
            starts.append(now)
        state.used += 1
        state.active += 1
        return state

    async def refresh(self, names: list[str]) -> None:
        """Nothing to read: the counts are here (the Redis-backed limits read theirs)."""

    def used_today(self, name: str) -> int:
        state = self._keys.get(name)
        return state.used if state is not None and state.day == day_number(self.clock()) else 0

    def active(self, name: str) -> int:
        state = self._keys.get(name)
        return state.active if state is not None else 0

    def seed_daily(self, counts: Mapping[str, int]) -> None:
        """Today's requests per key name, as recorded before a restart."""
        today = day_number(self.clock())
        for name, count in counts.items():
            state = self._keys.setdefault(name, _KeyState(today))
            if state.day != today:
                state.day, state.used = today, 0
            state.used = max(state.used, count)


# The 429s of a key's limits, the same whether counted here or in Redis (cluster/limits.py).

def daily_used(record: KeyRecord, day: int, retry_after: int) -> DailyBudgetUsed:
    midnight = datetime.fromtimestamp((day + 1) * 86400, UTC).strftime("%H:%M UTC")
    return DailyBudgetUsed(
        f"The daily budget of the API key {record.name!r} ({record.daily} requests a day) "
        f"is used up; it renews at {midnight}.", headers={"retry-after": str(retry_after)})


def too_many_a_minute(record: KeyRecord, wait: int) -> RateLimited:
    return RateLimited(f"The API key {record.name!r} may make {record.rpm} requests a minute; "
                       f"retry in {wait} s.", headers={"retry-after": str(wait)})


def too_many_open(record: KeyRecord) -> RateLimited:
    return RateLimited(f"The API key {record.name!r} may have {record.concurrency} requests "
                       "open at once; retry when one has finished.", headers={"retry-after": "1"})
