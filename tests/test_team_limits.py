"""Per-key limits (plain data, a settable clock) and the low-balance guard (against the
fake Poe's balance endpoint over HTTP)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from poe2openai.errors import ProxyError, RateLimited
from poe2openai.poe.usage import PoeUsage
from poe2openai.team.balance import BalanceGuard
from poe2openai.team.errors import DailyBudgetUsed, LowBalance
from poe2openai.team.keyfile import KeyRecord
from poe2openai.team.limits import Limits
from tests.fake_poe import FakePoe

DAY = 86400.0
T0 = 1_800_000_000.0  # 08:00 UTC


def key(**limits: Any) -> KeyRecord:
    return KeyRecord(name="k", digest="0" * 64, **limits)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def admit_many(limits: Limits, record: KeyRecord, n: int) -> list[ProxyError | None]:
    out: list[ProxyError | None] = []
    for _ in range(n):
        try:
            async with limits.admit(record):
                out.append(None)
        except ProxyError as err:
            out.append(err)
    return out


async def test_rpm_is_a_sliding_minute() -> None:
    clock = Clock(T0)
    limits = Limits(clock)
    record = key(rpm=3)
    assert await admit_many(limits, record, 3) == [None] * 3
    clock.t += 20
    [err] = await admit_many(limits, record, 1)
    assert isinstance(err, RateLimited) and err.status == 429
    assert err.response_headers()["retry-after"] == "40"
    assert "3 requests a minute" in err.message
    clock.t += 40  # the first three leave the window
    assert await admit_many(limits, record, 3) == [None] * 3
    assert isinstance((await admit_many(limits, record, 1))[0], RateLimited)


async def test_concurrency_under_concurrent_load() -> None:
    limits = Limits(Clock(T0))
    record = key(concurrency=2)
    release = asyncio.Event()
    inside = 0
    peak = 0

    async def one() -> str:
        nonlocal inside, peak
        try:
            async with limits.admit(record):
                inside += 1
                peak = max(peak, inside)
                await release.wait()
                inside -= 1
                return "ok"
        except RateLimited as err:
            assert err.response_headers()["retry-after"] == "1"
            return "429"

    tasks = [asyncio.create_task(one()) for _ in range(6)]
    await asyncio.sleep(0.05)
    release.set()
    results = await asyncio.gather(*tasks)
    assert sorted(results) == ["429"] * 4 + ["ok"] * 2 and peak == 2
    assert limits.active("k") == 0  # slots are given back
    assert await admit_many(limits, record, 2) == [None, None]


async def test_slot_is_freed_when_the_request_fails() -> None:
    limits = Limits(Clock(T0))
    record = key(concurrency=1)
    with pytest.raises(ValueError):
        async with limits.admit(record):
            raise ValueError("boom")
    assert limits.active("k") == 0


async def test_daily_budget_renews_at_utc_midnight_and_says_so() -> None:
    clock = Clock(T0)
    limits = Limits(clock)
    record = key(daily=2)
    assert await admit_many(limits, record, 2) == [None, None]
    [err] = await admit_many(limits, record, 1)
    assert isinstance(err, DailyBudgetUsed) and err.status == 429
    headers = err.response_headers()
    assert headers["x-should-retry"] == "false"
    assert headers["retry-after"] == str(16 * 3600)  # 08:00 -> 00:00
    assert "daily budget" in err.message and "used up" in err.message
    assert err.code == "daily_budget_exceeded"
    clock.t = T0 + 16 * 3600  # the next UTC day
    assert await admit_many(limits, record, 2) == [None, None]


async def test_refused_requests_use_up_nothing() -> None:
    clock = Clock(T0)
    limits = Limits(clock)
    record = key(rpm=1, daily=5)
    await admit_many(limits, record, 4)
    assert limits.used_today("k") == 1


async def test_daily_counts_are_restored_and_pass_through_is_unlimited() -> None:
    limits = Limits(Clock(T0))
    limits.seed_daily({"k": 2})
    assert isinstance((await admit_many(limits, key(daily=2), 1))[0], DailyBudgetUsed)
    async with limits.admit(None):
        pass


@pytest.fixture
async def usage_api(fake_poe: FakePoe) -> Any:
    async with aiohttp.ClientSession() as session:
        yield PoeUsage(session, fake_poe.base_url)


async def test_balance_guard_against_fake_poe(fake_poe: FakePoe, usage_api: PoeUsage) -> None:
    clock = Clock(0.0)
    fake_poe.balance = 40
    guard = BalanceGuard(lambda: usage_api.current_balance("server-key"), 100, ttl=60,
                         clock=clock)
    seen: list[int] = []
    guard.on_balance.append(seen.append)
    with pytest.raises(LowBalance) as info:
        await guard.check()
    assert info.value.status == 402 and "40 points" in info.value.message
    assert "POE_MIN_POINTS" in info.value.message
    assert fake_poe.balance_hits == 1 and seen == [40]
    fake_poe.balance = 5000
    with pytest.raises(LowBalance):  # cached for the TTL: Poe is not asked again
        await guard.check()
    assert fake_poe.balance_hits == 1
    clock.t = 61
    with pytest.raises(LowBalance):  # stale: refreshed in the background, not waited for
        await guard.check()
    for _ in range(200):
        if guard.balance == 5000:
            break
        await asyncio.sleep(0.01)
    await guard.check()
    assert fake_poe.balance_hits == 2 and seen == [40, 5000]
    await guard.close()


async def test_balance_guard_lets_requests_through_when_poe_cannot_tell(
        fake_poe: FakePoe, usage_api: PoeUsage) -> None:
    fake_poe.keys = {"the-real-key"}  # the server key is refused: 401
    guard = BalanceGuard(lambda: usage_api.current_balance("wrong"), 100)
    await guard.check()
    assert guard.balance is None and guard.last_error is not None
    off = BalanceGuard(lambda: usage_api.current_balance("x"), 0)
    await off.check()  # POE_MIN_POINTS=0: no check at all
    assert fake_poe.balance_hits == 1
    await guard.close()


async def test_points_history_pages(fake_poe: FakePoe, usage_api: PoeUsage) -> None:
    fake_poe.points_history = [
        {"creation_time": 1_800_000_000_000_000 - i * 1_000_000, "bot_name": "GPT-4o",
         "query_id": f"q{i}", "usage_type": "API", "cost_points": 10 + i} for i in range(230)]
    history = await usage_api.points_history("k")
    assert [e["query_id"] for e in history] == [f"q{i}" for i in range(230)]
    assert len(await usage_api.points_history("k", pages=1)) == 100
