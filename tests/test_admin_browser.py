"""The admin page in a real headless Chromium: log in, edit, save, and see the API change."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from poe2openai.app import create_app
from poe2openai.settings import Settings
from tests.fake_poe import FakePoe, done, text
from tests.helpers import AUTH, chat_body

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is not installed (the browser test needs it)")


async def test_admin_page_in_a_browser(aiohttp_server: AiohttpServer, fake_poe: FakePoe,
                                       settings_factory: Callable[..., Settings],
                                       tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    server = await aiohttp_server(create_app(settings_factory()))  # a real loopback port
    base = str(server.make_url("")).rstrip("/")
    fake_poe.script("gpt-4o", [text("from the real bot"), done()])

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # A wrong password is refused.
            context = await browser.new_context(
                http_credentials={"username": "admin", "password": "wrong"})
            page = await context.new_page()
            response = await page.goto(f"{base}/admin/")
            assert response is not None and response.status == 401
            await context.close()

            context = await browser.new_context(
                http_credentials={"username": "admin", "password": "test-password"})
            context.set_default_timeout(5000)
            page = await context.new_page()
            errors: list[Any] = []
            page.on("pageerror", lambda exc: errors.append(exc))
            response = await page.goto(f"{base}/admin")  # redirected to /admin/
            assert response is not None and response.status == 200
            await expect(page.locator('[data-model="gpt-4o"]')).to_be_visible()
            await expect(page.locator("#notices")).to_contain_text("no models.yaml yet")

            await page.locator("#enable").check()  # the map is off until switched on
            await page.locator('[data-model="assistant"] .m-enable').uncheck()
            await page.locator('[data-model="gpt-4o"] .m-alias').fill("browser-4o")
            await page.locator("#custom-id").fill("my-browser-bot")
            await page.locator("#custom-owner").fill("me")
            await page.locator("#custom-form button[type=submit]").click()
            await expect(page.locator('[data-model="my-browser-bot"]')).to_be_visible()
            # Search and filter narrow the list.
            await page.locator("#filter").select_option("disabled")
            await expect(page.locator(".model")).to_have_count(1)
            await page.locator("#filter").select_option("all")
            await page.locator("#search").fill("browser")
            await expect(page.locator(".model")).to_have_count(2)

            await page.locator("#save").click()
            await expect(page.locator(".notice.ok")).to_contain_text("Saved")
            await expect(page.locator("#save")).to_be_disabled()
            assert errors == []
        finally:
            await browser.close()

    saved = (tmp_path / "models.yaml").read_text()
    assert "mapping: browser-4o" in saved and "my-browser-bot" in saved
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/v1/models") as resp:
            ids = {m["id"] for m in (await resp.json())["data"]}
        assert {"browser-4o", "my-browser-bot"} <= ids
        assert "gpt-4o" not in ids and "assistant" not in ids
        async with http.post(f"{base}/v1/chat/completions", headers=AUTH,
                             json=chat_body(model="browser-4o")) as resp:
            body = await resp.json()
        assert body["choices"][0]["message"]["content"] == "from the real bot"
        assert fake_poe.last is not None and fake_poe.last.bot == "gpt-4o"
        async with http.post(f"{base}/v1/chat/completions", headers=AUTH,
                             json=chat_body(model="assistant")) as resp:
            assert resp.status == 404


async def test_hand_edit_during_a_page_edit_is_not_lost(
        aiohttp_server: AiohttpServer, settings_factory: Callable[..., Settings],
        tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    path = tmp_path / "models.yaml"
    path.write_text("# mine\nenable: true\nmodels:\n  gpt-4o: {mapping: four}\n")
    server = await aiohttp_server(create_app(settings_factory()))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(
                http_credentials={"username": "admin", "password": "test-password"})
            context.set_default_timeout(5000)
            page = await context.new_page()
            await page.goto(str(server.make_url("/admin/")))
            row = page.locator('[data-model="claude-sonnet-4.5"]')
            await page.locator('[data-model="gpt-5.2"] .m-alias').fill("five")
            await row.locator(".m-options").click()
            await row.locator(".o-params").fill('{"x": ')  # invalid JSON blocks saving
            await expect(page.locator("#save")).to_be_disabled()
            await row.locator(".o-params").fill('{"thinking_budget": 0}')
            await row.locator(".o-tool").select_option("xml")
            await page.locator("#token-edit").click()
            await page.locator("#token-input").fill("poe-token-abcdefgh1234")
            await page.locator("#token-form button[type=submit]").click()
            # Meanwhile, someone edits the file by hand.
            path.write_text("# mine\nenable: true\nmodels:\n  gpt-4o: {mapping: four}\n"
                            "  assistant: {enable: false}\n")
            await page.locator("#save").click()
            await expect(page.locator(".notice.error")).to_contain_text("changed on disk")
            await page.get_by_role("button", name="Reload, keep my edits").click()
            await expect(page.locator(".notice.info")).to_contain_text("kept your edits")
            await page.locator("#save").click()
            await expect(page.locator(".notice.ok")).to_contain_text("Saved")
            await expect(page.locator("#token-state")).to_contain_text("poe…1234")
            assert "abcdefgh" not in await page.content()
        finally:
            await browser.close()
    text_now = path.read_text()
    assert text_now.startswith("# mine\n")
    assert "assistant: {enable: false}" in text_now  # the hand edit
    assert "gpt-5.2:\n    mapping: five" in text_now  # and the page's edits
    assert "tool_mode: xml" in text_now and "thinking_budget: 0" in text_now
    assert "api_token: poe-token-abcdefgh1234" in text_now
