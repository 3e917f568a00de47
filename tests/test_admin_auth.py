"""Admin login throttling per client address, and the admin Origin check (scheme included).

Throttling runs through the real server; the throttle's clock is a number the test moves
forward, so lockouts expire without the test waiting for them.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import encode_basic_auth
from aiohttp.test_utils import TestClient

from poe2openai.admin import ADMIN_AUTH
from poe2openai.admin.auth import AdminAuth
from poe2openai.admin.throttle import LoginThrottle, client_key

Proxy = TestClient[Any, Any]

RIGHT = {"Authorization": encode_basic_auth("admin", "test-password")}
WRONG = {"Authorization": encode_basic_auth("admin", "guess")}


def admin_auth(proxy: Proxy) -> AdminAuth:
    """The /admin sub-app's login, found through the router's public info."""
    for resource in proxy.app.router.resources():
        sub = resource.get_info().get("app")
        if sub is not None and ADMIN_AUTH in sub:
            return sub[ADMIN_AUTH]
    raise AssertionError("no AdminAuth on /admin")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(proxy: Proxy) -> Clock:
    c = Clock()
    admin_auth(proxy).throttle.clock = c
    return c


def login_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and "admin" in r.getMessage().lower()
            and "password:" not in r.getMessage()]


async def status(proxy: Proxy, headers: dict[str, str]) -> tuple[int, str | None]:
    resp = await proxy.get("/admin/api/state", headers=headers)
    await resp.read()
    return resp.status, resp.headers.get("Retry-After")


# --- 10: wrong logins are throttled ------------------------------------------------------


async def test_wrong_logins_lock_the_address_out_for_longer_and_longer(
        proxy: Proxy, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    free = admin_auth(proxy).throttle.free
    for _ in range(free):
        assert await status(proxy, WRONG) == (401, None)
    # Locked out: every attempt is refused unchecked, the right password too.
    for _ in range(50):
        assert await status(proxy, WRONG) == (429, "1")
    assert await status(proxy, RIGHT) == (429, "1")
    # A request without credentials is no guess: it just gets the login prompt.
    assert (await status(proxy, {}))[0] == 401
    # One log line so far (the first wrong login), not one per guess.
    assert len(login_warnings(caplog)) == 1

    clock.now += 1.0
    assert await status(proxy, WRONG) == (401, None)
    assert await status(proxy, WRONG) == (429, "2")
    clock.now += 2.0
    assert await status(proxy, WRONG) == (401, None)
    assert await status(proxy, WRONG) == (429, "4")
    assert len(login_warnings(caplog)) == 1
    # A minute later, the next attempt brings one summary line with the counts.
    clock.now += 60.0
    assert await status(proxy, WRONG) == (401, None)
    assert await status(proxy, WRONG) == (429, "8")
    lines = login_warnings(caplog)
    assert len(lines) == 2
    assert "127.0.0.1" in lines[1] and "8 wrong in a row" in lines[1]
    assert "guess" not in " ".join(lines) and "test-password" not in " ".join(lines)

    # The lockout grows up to its cap.
    for _ in range(12):
        clock.now += 1000.0
        assert (await status(proxy, WRONG))[0] == 401
    assert await status(proxy, WRONG) == (429, str(int(admin_auth(proxy).throttle.cap)))


async def test_a_right_login_resets_the_count(proxy: Proxy, clock: Clock,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    free = admin_auth(proxy).throttle.free
    for _ in range(3):
        for _ in range(free - 1):
            assert await status(proxy, WRONG) == (401, None)
        assert await status(proxy, RIGHT) == (200, None)
    assert len(admin_auth(proxy).throttle) == 0
    for _ in range(free):
        assert await status(proxy, WRONG) == (401, None)
    assert await status(proxy, WRONG) == (429, "1")
    clock.now += 1.0
    assert await status(proxy, RIGHT) == (200, None)
    assert await status(proxy, WRONG) == (401, None)
    # Each success after wrong tries says so, once.
    assert any("Admin login from 127.0.0.1 after" in line for line in login_warnings(caplog))


async def test_a_quiet_hour_forgets_the_wrong_logins(proxy: Proxy, clock: Clock) -> None:
    throttle = admin_auth(proxy).throttle
    for _ in range(throttle.free):
        await status(proxy, WRONG)
    clock.now += throttle.forget + 1
    for _ in range(throttle.free):
        assert await status(proxy, WRONG) == (401, None)
    assert await status(proxy, WRONG) == (429, "1")


def test_the_address_table_is_bounded() -> None:
    now = [0.0]
    throttle = LoginThrottle(max_addresses=100, clock=lambda: now[0])
    for i in range(10_000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle) == 100
    for _ in range(throttle.free):
        throttle.failed("192.0.2.1")
    assert throttle.wait("192.0.2.1") == 1.0  # the newest address is kept
    assert throttle.wait("10.0.0.0") == 0.0  # the oldest were dropped


def test_addresses_are_grouped_the_way_clients_get_them() -> None:
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    # One IPv6 site usually has a whole /64: its addresses share one record.
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key(None) == "unknown"


# --- 11: the Origin check compares scheme, host and port ---------------------------------


async def save(proxy: Proxy, headers: dict[str, str]) -> int:
    page = await proxy.get("/admin/", headers=RIGHT)
    token = (await page.text()).split('name="csrf-token" content="')[1].split('"')[0]
    state = await (await proxy.get("/admin/api/state", headers=RIGHT)).json()
    resp = await proxy.post("/admin/api/config", headers={
        **RIGHT, "X-CSRF-Token": token, "Sec-Fetch-Site": "same-origin", **headers},
        json={"version": state["version"], "config": state["config"]})
    await resp.read()
    return resp.status


async def test_origin_must_match_scheme_host_and_port(proxy: Proxy) -> None:
    host, port = proxy.server.host, proxy.server.port
    assert await save(proxy, {"Origin": f"http://{host}:{port}"}) == 200
    assert await save(proxy, {"Origin": f"HTTP://{host.upper()}:{port}"}) == 200
    for origin in (f"https://{host}:{port}", f"http://{host}:{port + 1}", f"http://{host}",
                   f"ws://{host}:{port}", f"http://user@{host}:{port}", "http://[::1",
                   f"http://{host}:99999", "null", ""):
        assert await save(proxy, {"Origin": origin}) == 403, origin


async def test_origin_behind_a_reverse_proxy(proxy: Proxy) -> None:
    host, port = proxy.server.host, proxy.server.port
    tls = {"X-Forwarded-Proto": "https"}
    assert await save(proxy, {**tls, "Origin": f"https://{host}:{port}"}) == 200
    assert await save(proxy, {**tls, "Origin": f"http://{host}:{port}"}) == 403
    named = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "admin.example"}
    assert await save(proxy, {**named, "Origin": "https://admin.example"}) == 200
    assert await save(proxy, {**named, "Origin": "https://admin.example:443"}) == 200
    assert await save(proxy, {**named, "Origin": "http://admin.example"}) == 403
    assert await save(proxy, {**named, "Origin": "https://admin.example:8443"}) == 403
    assert await save(proxy, {**named, "Origin": "https://evil.example"}) == 403
