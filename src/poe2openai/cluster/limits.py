"""Per-key limits (rpm, concurrency, daily) held in Redis, for every instance at once.

The same rules and errors as :mod:`poe2openai.team.limits`, checked and taken by one Lua
script, so two instances can never both take the last slot. Times are Redis's own clock
(``TIME``), so instances whose clocks differ still agree. Per key name:

* ``…:lim:<name>:starts``: a sorted set of admission times in the last 60 s (rpm);
* ``…:lim:<name>:active``: the open requests, each a lease that its instance renews every
  :data:`RENEW_EVERY` seconds, so the slots of an instance that died free themselves
  within :data:`LEASE` seconds;
* ``…:lim:<name>:daily``: the UTC day and its count (kept two days).

If Redis fails or is slow, the request is let through uncounted (fail open): see
:mod:`.link` for the warning and the metric.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Final

from ..team.keyfile import KeyRecord
from ..team.limits import daily_used, day_number, too_many_a_minute, too_many_open
from .link import PREFIX, RedisLink, Script, SharedStateDown

__all__ = ["LEASE", "RENEW_EVERY", "SharedLimits"]

log = logging.getLogger(__name__)

#: Seconds an open request's concurrency slot lives in Redis without being renewed.
LEASE: Final = 30
RENEW_EVERY: Final = 10.0

_TAKE = Script("""
local t = redis.call('TIME')
local secs = tonumber(t[1])
local now = secs + tonumber(t[2]) / 1000000
local day = math.floor(secs / 86400)
local rpm, conc, daily = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lease = tonumber(ARGV[5])
local used = 0
if tonumber(redis.call('HGET', KEYS[3], 'day') or '-1') == day then
  used = tonumber(redis.call('HGET', KEYS[3], 'used') or '0')
end
if tonumber(ARGV[6]) == day and tonumber(ARGV[7]) > used then used = tonumber(ARGV[7]) end
if daily > 0 and used >= daily then
  return {1, (day + 1) * 86400 - secs, day}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60)
if rpm > 0 and redis.call('ZCARD', KEYS[1]) >= rpm then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {2, math.max(1, math.ceil(tonumber(oldest[2]) + 60 - now)), day}
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local active = redis.call('ZCARD', KEYS[2])
if conc > 0 and active >= conc then
  return {3, active, day}
end
if rpm > 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('EXPIRE', KEYS[1], 61)
end
redis.call('ZADD', KEYS[2], now + lease, ARGV[4])
redis.call('EXPIRE', KEYS[2], lease + 1)
redis.call('HSET', KEYS[3], 'day', day, 'used', used + 1)
redis.call('EXPIRE', KEYS[3], 2 * 86400)
return {0, used + 1, day}
""")

# KEYS: active sets; ARGV[1]: lease; ARGV[2..]: "<key index>:<member>"
_RENEW = Script("""
local t = redis.call('TIME')
local until_ = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
for i = 2, #ARGV do
  local sep = string.find(ARGV[i], ':', 1, true)
  local k = KEYS[tonumber(string.sub(ARGV[i], 1, sep - 1))]
  redis.call('ZADD', k, 'XX', until_, string.sub(ARGV[i], sep + 1))
  redis.call('EXPIRE', k, tonumber(ARGV[1]) + 1)
end
return 0
""")

# KEYS: daily hash, active set, per key name; returns used today and open requests, in pairs.
_SNAPSHOT = Script("""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local day = math.floor(tonumber(t[1]) / 86400)
local out = {}
for i = 1, #KEYS, 2 do
  local used = 0
  if tonumber(redis.call('HGET', KEYS[i], 'day') or '-1') == day then
    used = tonumber(redis.call('HGET', KEYS[i], 'used') or '0')
  end
  out[#out + 1] = used
  out[#out + 1] = redis.call('ZCOUNT', KEYS[i + 1], '(' .. now, '+inf')
end
return out
""")


def _keys(name: str) -> list[str]:
    base = f"{PREFIX}lim:{name}:"
    return [base + "starts", base + "active", base + "daily"]


class _Admission:
    __slots__ = ("_limits", "_member", "_record")

    def __init__(self, limits: SharedLimits, record: KeyRecord | None) -> None:
        self._limits = limits
        self._record = record
        self._member: str | None = None

    async def __aenter__(self) -> None:
        if self._record is not None:
            self._member = await self._limits.take(self._record)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._member is not None and self._record is not None:
            member, self._member = self._member, None
            await self._limits.release(self._record.name, member)


class SharedLimits:
    """The limit state of every proxy key, in Redis (see the module docs)."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._ids = itertools.count(1)
        self._held: dict[str, dict[str, None]] = {}  # key name -> members open here
        self._seen: dict[str, tuple[int, int, int]] = {}  # name -> (day, used, active)
        self._seed: tuple[int, Mapping[str, int]] = (-1, {})
        link.every(RENEW_EVERY, self._renew)

    def admit(self, record: KeyRecord | None) -> _Admission:
        """``async with``: check and take a slot on entry, free the concurrency slot on
        exit. ``None`` (no proxy key: pass-through) is never limited."""
        return _Admission(self, record)

    async def take(self, record: KeyRecord) -> str | None:
        """Check the limits and count one request (or raise); the slot's name, or None
        when nothing was taken (Redis away: let through). A key without limits is counted
        too (the dashboard shows its use), as in :class:`~..team.limits.Limits`."""
        member = f"{self.link.process}:{next(self._ids)}"
        seed_day, seeds = self._seed
        try:
            verdict, value, day = await self.link.run(
                "limits", _TAKE, _keys(record.name),
                [record.rpm or 0, record.concurrency or 0, record.daily or 0, member, LEASE,
                 seed_day, seeds.get(record.name, 0)])
        except SharedStateDown:
            return None  # fail open; the link warned and counted it
        if verdict == 0:
            self._held.setdefault(record.name, {})[member] = None
            _, _, active = self._seen.get(record.name, (0, 0, 0))
            self._seen[record.name] = (day, int(value), active + 1)
            return member
        if verdict == 1:
            raise daily_used(record, day, max(1, int(value)))
        if verdict == 2:
            raise too_many_a_minute(record, int(value))
        raise too_many_open(record)

    async def release(self, name: str, member: str) -> None:
        """Give a concurrency slot back (if Redis is away, its lease runs out instead)."""
        held = self._held.get(name)
        if held is not None:
            held.pop(member, None)
            if not held:
                del self._held[name]
        day, used, active = self._seen.get(name, (0, 0, 1))
        self._seen[name] = (day, used, max(0, active - 1))
        try:
            await self.link.call("limits", lambda r: r.zrem(_keys(name)[1], member))
        except SharedStateDown:
            pass

    async def _renew(self) -> None:
        """Extend the leases of the requests open on this instance."""
        if not self._held:
            return
        names = list(self._held)
        keys = [_keys(n)[1] for n in names]
        members = [f"{i + 1}:{m}" for i, n in enumerate(names) for m in self._held[n]]
        try:
            await self.link.run("limits", _RENEW, keys, [LEASE, *members])
        except SharedStateDown:
            pass

    async def refresh(self, names: list[str]) -> None:
        """Read every key's counts for :meth:`used_today` and :meth:`active` (the admin
        page); when Redis is away, the last counts seen stay."""
        if not names:
            return
        keys = [k for n in names for k in (_keys(n)[2], _keys(n)[1])]
        try:
            counts = await self.link.run("limits", _SNAPSHOT, keys, [])
        except SharedStateDown:
            return
        today = day_number(time.time())
        for i, name in enumerate(names):
            self._seen[name] = (today, int(counts[2 * i]), int(counts[2 * i + 1]))

    def used_today(self, name: str) -> int:
        day, used, _ = self._seen.get(name, (0, 0, 0))
        return used if day == day_number(time.time()) else 0

    def active(self, name: str) -> int:
        return self._seen.get(name, (0, 0, 0))[2]

    def seed_daily(self, counts: Mapping[str, int]) -> None:
        """Today's requests per key name from this instance's usage log: a floor for the
        counts in Redis (which may have lost them), applied when a key is next checked."""
        self._seed = (day_number(time.time()), dict(counts))
