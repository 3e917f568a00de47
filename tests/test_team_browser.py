"""The dashboard in a real headless Chromium: charts drawn from the usage log, Poe points,
and proxy keys created (secret shown once) and revoked from the page."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from poe2openai.app import create_app
from poe2openai.settings import Settings
from poe2openai.team.gate import TEAM
from tests.fake_poe import FakePoe
from tests.helpers import chat_body
from tests.test_admin_browser import ARGS, CHROMIUM

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is not installed (the browser test needs it)")

#: Where the screenshot is kept for people to look at (set to a folder to keep it).
SHOT_DIR = os.environ.get("POE2OPENAI_SCREENSHOTS")


def _seed_usage(app: Any, now: float) -> None:
    """A day of traffic from three keys on four models, written through the usage log."""
    usage = app[TEAM].usage
    rng = random.Random(7)
    clock = usage.clock
    models = ["GPT-4o", "Claude-Sonnet-4.5", "Gemini-2.5-Pro", "o3"]
    try:
        for i in range(24 * 12):
            t = now - 86400 + i * 300
            for _ in range(rng.randint(0, 4)):
                model = rng.choice(models)
                usage.clock = lambda t=t: t
                status = 200 if rng.random() > 0.06 else rng.choice([429, 502])
                usage.record("chat", model, rng.choice(["alice", "bob", "ci-bot"]), status,
                             rng.randint(50, 2000), rng.randint(20, 800),
                             rng.uniform(0.3, 2.5), rng.uniform(1, 12))
    finally:
        usage.clock = clock


async def test_dashboard_in_a_browser(aiohttp_server: AiohttpServer, fake_poe: FakePoe,
                                      settings_factory: Callable[..., Settings],
                                      tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    now = time.time()
    fake_poe.balance = 48_250
    fake_poe.points_history = [
        {"creation_time": int((now - i * 5400) * 1_000_000), "bot_name": bot,
         "query_id": f"q{i}", "usage_type": "API", "cost_points": 40 + (i * 37) % 400}
        for i, bot in zip(range(200), ["GPT-4o", "Claude-Sonnet-4.5", "o3"] * 70, strict=False)]
    app = create_app(settings_factory(poe_api_key="poe-server-key-xyz", poe_min_points=1000))
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    _seed_usage(app, now)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(
                http_credentials={"username": "admin", "password": "test-password"},
                viewport={"width": 1280, "height": 1600})
            context.set_default_timeout(5000)
            page = await context.new_page()
            errors: list[Any] = []
            page.on("pageerror", lambda exc: errors.append(exc))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            elsewhere: list[str] = []  # the chart code is shipped: nothing from another site
            page.on("request", lambda r: None if r.url.startswith(base) or
                    r.url.startswith("data:") else elsewhere.append(r.url))
            response = await page.goto(f"{base}/admin/dashboard")
            assert response is not None and response.status == 200
            await expect(page.locator("#balance")).to_have_text("48,250")
            await expect(page.locator(".chart")).to_have_count(7)  # 6 usage + points per day
            lines = page.locator("#charts .chart").first.locator("path.line")
            await expect(lines).to_have_count(4)  # one per model
            await expect(page.locator("#totals tbody tr")).to_have_count(4)
            await page.locator("#by").select_option("key")
            await expect(page.locator("#totals tbody tr")).to_have_count(3)

            await page.locator("#k-name").fill("browser-key")
            await page.locator("#k-models").fill("gpt-4o, claude-*")
            await page.locator("#k-daily").fill("100")
            await page.locator("#key-form button[type=submit]").click()
            await expect(page.locator("#secret")).to_be_visible()
            secret = await page.locator("#secret-value").text_content()
            assert secret is not None and secret.startswith("p2o-")
            await expect(page.locator("#keys tbody tr")).to_have_count(1)
            if SHOT_DIR:
                await page.screenshot(path=str(Path(SHOT_DIR) / "dashboard.png"), full_page=True)
            await page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            async with aiohttp.ClientSession() as http:
                async with http.post(f"{base}/v1/chat/completions", json=chat_body(),
                                     headers={"Authorization": f"Bearer {secret}"}) as resp:
                    assert resp.status == 200
            await page.locator("#secret-hide").click()
            await expect(page.locator("#secret")).to_be_hidden()
            page.on("dialog", lambda d: d.accept())
            await page.locator('[data-revoke="browser-key"]').click()
            await expect(page.locator("#keys .state")).to_have_text("revoked")
            assert secret not in await page.content()
            assert errors == [] and elsewhere == []
        finally:
            await browser.close()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/v1/chat/completions", json=chat_body(),
                             headers={"Authorization": f"Bearer {secret}"}) as resp:
            assert resp.status == 401
