"""``REDIS_URL``: limits, ``RATE_LIMIT_MS``, stored responses and the upload cache shared
by two apps through a real ``redis-server`` (two apps on one loop stand for two instances
here; tests/test_two_instances.py runs two server processes), and what happens when
Redis goes away, freezes and comes back."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from poe2openai.cluster.limits import LEASE, SharedLimits
from poe2openai.cluster.link import RedisLink
from poe2openai.cluster.responses import decode, encode
from poe2openai.errors import ProxyError, RateLimited
from poe2openai.settings import SettingsError, load_settings
from poe2openai.team.errors import DailyBudgetUsed
from poe2openai.team.keyfile import FILE_NAME, KeyRecord, create_key
from poe2openai.translate.conversation import ToolCall, Turn
from tests.fake_poe import FakePoe, Received, done, text
from tests.helpers import AUTH, assert_openai_error, chat_body, wait_until
from tests.redis_server import RedisServer, redis_server

__all__ = ["redis_server"]  # the fixture, imported for pytest

Proxy = TestClient[Any, Any]
Make = Callable[..., Awaitable[Proxy]]
SERVER_KEY = "server-poe-key"
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"admin:test-password").decode()}


@pytest.fixture
def shared(make_proxy: Make, redis_server: RedisServer) -> Make:
    """An app (an "instance") using the test's Redis."""
    async def make(**overrides: Any) -> Proxy:
        return await make_proxy(**{"redis_url": redis_server.url, "redis_timeout": 0.3,
                                   **overrides})

    return make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def metric(body: str, name: str, **labels: str) -> float | None:
    for line in body.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


async def respond(proxy: Proxy, key: str = "test-key", **body: Any) -> Any:
    resp = await proxy.post("/v1/responses", headers=bearer(key),
                            json={"model": "GPT-4o", "input": "Hi", **body})
    return resp


# -- stored responses ------------------------------------------------------------------

async def test_response_stored_by_one_continues_on_the_other(shared: Make,
                                                             fake_poe: FakePoe) -> None:
    one, two = await shared(), await shared()
    fake_poe.script("GPT-4o", [text("First answer."), done()])
    first = await (await respond(one, input="Remember 7.")).json()
    fake_poe.script("GPT-4o", [text("It was 7."), done()])
    resp = await respond(two, input="What was it?", previous_response_id=first["id"])
    assert resp.status == 200, await resp.text()
    query = fake_poe.last.query  # type: ignore[union-attr]
    assert [(m["role"], m["content"]) for m in query] == [
        ("user", "Remember 7."), ("bot", "First answer."), ("user", "What was it?")]
    # GET and DELETE on either; another API key sees nothing.
    got = await two.get(f"/v1/responses/{first['id']}", headers=AUTH)
    assert (await got.json())["output"] == first["output"]
    await assert_openai_error(
        await two.get(f"/v1/responses/{first['id']}", headers=bearer("other-key")), 404)
    assert (await two.delete(f"/v1/responses/{first['id']}", headers=AUTH)).status == 200
    await assert_openai_error(await one.get(f"/v1/responses/{first['id']}", headers=AUTH), 404)


async def test_a_stream_is_stored_before_its_last_event(shared: Make, fake_poe: FakePoe,
                                                        redis_server: RedisServer) -> None:
    """A client that continues a streamed response on another instance the moment it sees
    ``response.completed`` (before the stream has closed) finds it stored: the store comes
    first. Redis holds writes back for a moment here, so a store made after the last event
    would still be missing when the client looks."""
    one, two = await shared(redis_timeout=5.0), await shared()
    release = asyncio.Event()

    async def held(_: Received) -> list[Any]:
        await release.wait()
        return [text("Streamed."), done()]

    fake_poe.script("GPT-4o", held)
    started = asyncio.create_task(respond(one, input="Go.", stream=True))
    assert await fake_poe.wait_for_requests(1, 10)
    assert await redis_server.command("CLIENT", "PAUSE", "300", "WRITE") == b"+OK\r\n"
    release.set()
    resp = await started
    rid = None
    async for line in resp.content:
        if line.startswith(b"data:") and b'"response.completed"' in line:
            rid = json.loads(line[5:])["response"]["id"]
            break
    assert rid is not None
    assert await redis_server.command("HEXISTS", "poe2openai:resp:data", rid) == b":1\r\n"
    fake_poe.script("GPT-4o", [text("More."), done()])
    again = await respond(two, input="More.", previous_response_id=rid)
    assert again.status == 200, await again.text()
    await resp.read()


def test_turns_survive_the_json_round_trip() -> None:
    turns = [Turn("system", "Be brief."), Turn("user", "Weather?"),
             Turn("assistant", "", [ToolCall("call_1", "get_weather", '{"city":"Paris"}'),
                                    ToolCall("call_2", "apply_patch", "*** Begin", True)],
                  reasoning="thinking"),
             Turn("tool", "18C", call_id="call_1", name="get_weather", is_error=True)]
    attachments = {1: [{"url": "https://pfst.cf2.poecdn.net/x", "content_type": "image/png",
                        "name": "a.png"}]}
    response = {"id": "resp_1", "output": []}
    assert decode(encode(response, turns, attachments)) == (response, turns, attachments)
    with pytest.raises(ValueError):
        decode(b'{"v": 99}')


async def test_stored_responses_keep_their_bounds(shared: Make, fake_poe: FakePoe,
                                                  redis_server: RedisServer) -> None:
    fake_poe.script("GPT-4o", [text("Same answer."), done()])
    two_only = await shared(responses_max_stored=2)
    ids = [(await (await respond(two_only)).json())["id"] for _ in range(3)]
    assert (await two_only.get(f"/v1/responses/{ids[0]}", headers=AUTH)).status == 404
    for rid in ids[1:]:
        assert (await two_only.get(f"/v1/responses/{rid}", headers=AUTH)).status == 200
    # Older than RESPONSES_TTL: gone (the entry is aged in Redis rather than waited for).
    await redis_server.command("ZADD", "poe2openai:resp:index", "1000", ids[1])
    assert (await two_only.get(f"/v1/responses/{ids[1]}", headers=AUTH)).status == 404
    # The byte budget: room for two entries of this size, not three.
    size = int(await _bulk(redis_server, "HGET", "poe2openai:resp:size", ids[2]))
    budget = await shared(responses_max_bytes=size * 2 + size // 2)
    more = [(await (await respond(budget)).json())["id"] for _ in range(3)]
    assert (await budget.get(f"/v1/responses/{more[0]}", headers=AUTH)).status == 404
    assert (await budget.get(f"/v1/responses/{more[2]}", headers=AUTH)).status == 200


async def _bulk(server: RedisServer, *args: str) -> bytes:
    """A bulk-string reply's value."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"".join([f"*{len(args)}\r\n".encode()] + [
            f"${len(a)}\r\n{a}\r\n".encode() for a in args]))
        head = await reader.readline()
        assert head.startswith(b"$") and head != b"$-1\r\n", head
        return (await reader.readexactly(int(head[1:]) + 2))[:-2]
    finally:
        writer.close()
        await writer.wait_closed()


# -- limits ----------------------------------------------------------------------------

async def test_limits_hold_across_apps(shared: Make, tmp_path: Path) -> None:
    _, rpm_key = create_key(tmp_path / FILE_NAME, "alice", rpm=3)
    _, daily_key = create_key(tmp_path / FILE_NAME, "bob", daily=2)
    one, two = await shared(poe_api_key=SERVER_KEY), await shared(poe_api_key=SERVER_KEY)
    statuses = []
    for proxy in (one, two, one, two):
        resp = await proxy.post("/v1/chat/completions", json=chat_body(),
                                headers=bearer(rpm_key))
        statuses.append(resp.status)
    assert statuses == [200, 200, 200, 429]
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    assert (await one.post("/v1/chat/completions", json=chat_body(),
                           headers=bearer(daily_key))).status == 200
    assert (await two.post("/v1/chat/completions", json=chat_body(),
                           headers=bearer(daily_key))).status == 200
    resp = await one.post("/v1/chat/completions", json=chat_body(), headers=bearer(daily_key))
    await assert_openai_error(resp, 429, code="daily_budget_exceeded")
    assert resp.headers["x-should-retry"] == "false"
    # The admin page of either shows the shared counts.
    listing = await (await two.get("/admin/api/keys", headers=ADMIN)).json()
    used = {k["name"]: k["used_today"] for k in listing["keys"]}
    assert used == {"alice": 3, "bob": 2}


async def test_keys_without_limits_are_counted_across_apps(shared: Make,
                                                          tmp_path: Path) -> None:
    _, key = create_key(tmp_path / FILE_NAME, "carol")  # no rpm, concurrency or daily
    one, two = await shared(poe_api_key=SERVER_KEY), await shared(poe_api_key=SERVER_KEY)
    for proxy in (one, two, one):
        resp = await proxy.post("/v1/chat/completions", json=chat_body(), headers=bearer(key))
        assert resp.status == 200
    listing = await (await two.get("/admin/api/keys", headers=ADMIN)).json()
    assert {k["name"]: k["used_today"] for k in listing["keys"]} == {"carol": 3}


async def test_spacing_is_one_schedule_for_all_apps(shared: Make) -> None:
    """RATE_LIMIT_MS: the second request of a key waits for its turn whichever instance it
    reaches; one whose turn is more than 30 s away gets 429 at once."""
    one, two = await shared(rate_limit_ms=40_000), await shared(rate_limit_ms=40_000)
    assert (await one.post("/v1/chat/completions", json=chat_body(), headers=AUTH)).status == 200
    resp = await two.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    await assert_openai_error(resp, 429, code="rate_limit_exceeded")
    assert 30 < int(resp.headers["retry-after"]) <= 40
    # Another key has its own schedule.
    assert (await two.post("/v1/chat/completions", json=chat_body(),
                           headers=bearer("other-key"))).status == 200


def record(**limits: Any) -> KeyRecord:
    return KeyRecord(name="k", digest="0" * 64, **limits)


async def admit(limits: SharedLimits, rec: KeyRecord) -> ProxyError | None:
    try:
        async with limits.admit(rec):
            return None
    except ProxyError as err:
        return err


async def test_concurrency_slots_are_leases(redis_server: RedisServer) -> None:
    """An open request's slot is a lease: a slot whose instance died (its lease ran out) is
    free again, a live one is not; a slot is given back when its request ends."""
    link = RedisLink(redis_server.url, 0.5)
    await link.start()
    try:
        limits = SharedLimits(link)
        rec = record(concurrency=1)
        await redis_server.command("ZADD", "poe2openai:lim:k:active", "1000", "dead:1")
        assert await admit(limits, rec) is None
        await redis_server.command("ZADD", "poe2openai:lim:k:active", "9999999999", "live:1")
        err = await admit(limits, rec)
        assert isinstance(err, RateLimited) and "1 requests open at once" in err.message
        await redis_server.command("ZREM", "poe2openai:lim:k:active", "live:1")
        async with limits.admit(rec):
            assert isinstance(await admit(limits, rec), RateLimited)
            await limits.refresh(["k"])
            assert limits.active("k") == 1
        assert await admit(limits, rec) is None
    finally:
        await link.close()


async def test_open_requests_renew_their_leases(redis_server: RedisServer) -> None:
    """The instance renews the leases of its open requests (every 10 s, here at once), so a
    long answer keeps its slot; a finished one is not renewed back."""
    link = RedisLink(redis_server.url, 0.5)
    await link.start()
    try:
        limits = SharedLimits(link)
        rec = record(concurrency=2)
        async with limits.admit(rec):
            [member] = list(limits._held["k"])
            await redis_server.command("ZADD", "poe2openai:lim:k:active", "XX", "5", member)
            await limits._renew()
            score = await _bulk(redis_server, "ZSCORE", "poe2openai:lim:k:active", member)
            assert float(score) > time.time() + LEASE - 5
        assert await redis_server.command("ZCARD", "poe2openai:lim:k:active") == b":0\r\n"
        await limits._renew()  # nothing open: nothing comes back
        assert await redis_server.command("ZCARD", "poe2openai:lim:k:active") == b":0\r\n"
    finally:
        await link.close()


async def test_more_concurrent_calls_than_connections(redis_server: RedisServer) -> None:
    """Callers beyond the connection pool's size wait their turn; none is starved into the
    timeout (a blocking pool did that under cancellation)."""
    link = RedisLink(redis_server.url, 1.0)
    await link.start()
    try:
        limits = SharedLimits(link)
        rec = record(rpm=100_000, concurrency=100_000)

        async def worker() -> None:
            for _ in range(20):
                assert await admit(limits, rec) is None

        await asyncio.gather(*(worker() for _ in range(100)))
        assert link.failures == {} and link.up
        await limits.refresh(["k"])
        assert limits.used_today("k") == 2000 and limits.active("k") == 0
    finally:
        await link.close()


async def test_daily_counts_seeded_from_the_usage_log(redis_server: RedisServer) -> None:
    """A Redis that lost today's counts gets this instance's count from its usage log as a
    floor; the daily error says when the budget renews."""
    link = RedisLink(redis_server.url, 0.5)
    await link.start()
    try:
        limits = SharedLimits(link)
        limits.seed_daily({"k": 2})
        rec = record(daily=3)
        assert await admit(limits, rec) is None
        err = await admit(limits, rec)
        assert isinstance(err, DailyBudgetUsed) and "renews at 00:00 UTC" in err.message
        assert 1 <= int(err.response_headers()["retry-after"]) <= 86400
        assert limits.used_today("k") == 3
    finally:
        await link.close()


# -- uploads ---------------------------------------------------------------------------

def image_body(seed: int, size: int = 64) -> dict[str, Any]:
    data = b"\x89PNG\r\n\x1a\n" + bytes([seed]) * size
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    return {"model": "GPT-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url}}]}]}


async def test_upload_cache_is_shared_and_bounded(shared: Make, fake_poe: FakePoe,
                                                  redis_server: RedisServer,
                                                  tmp_path: Path) -> None:
    # Each its own CONFIG_DIR (as on two hosts), so the SQLite cache there is not shared.
    one = await shared(url_cache_size_mb=1, config_dir=tmp_path / "one")
    two = await shared(url_cache_size_mb=1, config_dir=tmp_path / "two")
    assert (await one.post("/v1/chat/completions", json=image_body(1), headers=AUTH)).status \
        == 200
    assert len(fake_poe.uploads) == 1
    assert (await two.post("/v1/chat/completions", json=image_body(1), headers=AUTH)).status \
        == 200
    assert len(fake_poe.uploads) == 1  # a hit on the other instance
    body = await (await two.get("/metrics")).text()
    assert metric(body, "poe2openai_upload_cache_lookups_total", result="hit") == 1
    # Another API key does not get this key's upload.
    await two.post("/v1/chat/completions", json=image_body(1), headers=bearer("other-key"))
    assert len(fake_poe.uploads) == 2
    # Least recently used first over URL_CACHE_SIZE_MB: two 600 KB files do not both fit.
    for seed in (2, 3):
        resp = await one.post("/v1/chat/completions", json=image_body(seed, 600_000),
                              headers=AUTH)
        assert resp.status == 200
    assert len(fake_poe.uploads) == 4
    await two.post("/v1/chat/completions", json=image_body(3, 600_000), headers=AUTH)
    assert len(fake_poe.uploads) == 4  # the newer one is there
    await two.post("/v1/chat/completions", json=image_body(2, 600_000), headers=AUTH)
    assert len(fake_poe.uploads) == 5  # the older one was evicted
    # Expired entries are not used (aged in Redis rather than waited for).
    await redis_server.command("DEL", "poe2openai:up:expires")
    await one.post("/v1/chat/completions", json=image_body(1), headers=AUTH)
    assert len(fake_poe.uploads) == 6
    assert not (tmp_path / "one" / "upload-cache.sqlite3").exists()


# -- Redis away, frozen, back ----------------------------------------------------------

async def test_redis_away_then_back(shared: Make, fake_poe: FakePoe, tmp_path: Path,
                                    redis_server: RedisServer,
                                    caplog: pytest.LogCaptureFixture) -> None:
    _, secret = create_key(tmp_path / FILE_NAME, "alice", rpm=1)
    _, carol = create_key(tmp_path / FILE_NAME, "carol")
    auth = bearer(carol)
    proxy = await shared(poe_api_key=SERVER_KEY, rate_limit_ms=10)
    stored = (await (await respond(proxy, carol)).json())["id"]
    await redis_server.stop()
    # Requests are served; the rpm limit of 1 lets both through (fail open).
    for _ in range(2):
        resp = await proxy.post("/v1/chat/completions", json=chat_body(), headers=bearer(secret))
        assert resp.status == 200
    # A stored response cannot be read: 503, not a wrong 404; continuing it neither.
    resp = await proxy.get(f"/v1/responses/{stored}", headers=auth)
    await assert_openai_error(resp, 503, code="shared_state_unavailable")
    assert resp.headers["retry-after"] == "1" and resp.headers["x-should-retry"] == "true"
    resp = await respond(proxy, carol, previous_response_id=stored)
    await assert_openai_error(resp, 503, code="shared_state_unavailable")
    await assert_openai_error(await proxy.delete(f"/v1/responses/{stored}", headers=auth), 503)
    # A new response is answered (but cannot be stored).
    assert (await respond(proxy, carol)).status == 200
    body = await (await proxy.get("/metrics")).text()
    assert metric(body, "poe2openai_redis_up") == 0
    assert (metric(body, "poe2openai_redis_failures_total", use="limits") or 0) >= 1
    assert (metric(body, "poe2openai_redis_failures_total", use="responses") or 0) >= 1
    assert any("per-key limits are not enforced" in r.getMessage() for r in caplog.records)

    await redis_server.start()  # empty, as a restarted Redis without persistence is

    async def limited_again() -> bool:
        resp = await proxy.post("/v1/chat/completions", json=chat_body(),
                                headers=bearer(secret))
        return resp.status == 429

    assert await wait_until(limited_again)
    new = (await (await respond(proxy, carol)).json())["id"]
    assert (await proxy.get(f"/v1/responses/{new}", headers=auth)).status == 200
    body = await (await proxy.get("/metrics")).text()
    assert metric(body, "poe2openai_redis_up") == 1
    assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_frozen_redis_costs_a_timeout_not_a_hang(shared: Make,
                                                       redis_server: RedisServer) -> None:
    """A Redis that accepts nothing (SIGSTOP): each call gives up after REDIS_TIMEOUT and
    requests are answered; then it thaws and is used again."""
    proxy = await shared(rate_limit_ms=10)
    stored = (await (await respond(proxy)).json())["id"]
    redis_server.pause()
    try:
        assert (await proxy.post("/v1/chat/completions", json=chat_body(),
                                 headers=AUTH)).status == 200
        await assert_openai_error(await proxy.get(f"/v1/responses/{stored}", headers=AUTH), 503)
    finally:
        redis_server.resume()

    async def readable() -> bool:
        return (await proxy.get(f"/v1/responses/{stored}", headers=AUTH)).status == 200

    assert await wait_until(readable)


# -- metrics and settings --------------------------------------------------------------

async def test_every_metric_carries_the_instance_id(shared: Make, make_proxy: Make) -> None:
    proxy = await shared(instance_id="blue-1")
    await proxy.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    body = await (await proxy.get("/metrics")).text()
    samples = [ln for ln in body.splitlines() if ln and not ln.startswith("#")]
    assert samples and all('instance_id="blue-1"' in ln for ln in samples)
    assert metric(body, "poe2openai_redis_up", instance_id="blue-1") == 1
    # One instance without REDIS_URL: the metrics are as they always were.
    plain = await make_proxy()
    body = await (await plain.get("/metrics")).text()
    assert "instance_id" not in body and "poe2openai_redis" not in body


def test_redis_settings() -> None:
    s = load_settings({"REDIS_URL": "redis://:hunter2@cache:6379/2", "REDIS_TIMEOUT": "0.2"})
    assert s.redis_url == "redis://:hunter2@cache:6379/2" and s.redis_timeout == 0.2
    assert "hunter2" not in repr(s)
    assert load_settings({}).redis_url == ""
    with pytest.raises(SettingsError) as info:
        load_settings({"REDIS_URL": "http://:hunter2@cache"})
    assert "REDIS_URL" in str(info.value) and "hunter2" not in str(info.value)
    with pytest.raises(SettingsError):
        load_settings({"INSTANCE_ID": "has spaces"})
