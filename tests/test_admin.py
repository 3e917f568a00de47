"""The model map through the running proxy, hot reload, and the /admin page and API."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import encode_basic_auth, web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpServer

from poe2openai import configfile
from tests.fake_poe import FakePoe, done, sleep, text
from tests.helpers import AUTH, assert_openai_error, chat_body, parse_sse, stream_text

Proxy = TestClient[Any, Any]
MakeProxy = Callable[..., Awaitable[Proxy]]

ADMIN = {"Authorization": encode_basic_auth("admin", "test-password")}

CONFIG = """\
# My model map (hand-written)
enable: true   # master switch

models:
  # --- OpenAI ---
  gpt-4o:
    mapping: my-4o   # what my editor asks for
  GPT-5.2:
    enable: false

  # --- Anthropic ---
  claude-sonnet-4.5:
    replace_response: true

# private bots
custom_models:
  - id: my-private-bot   # mine
    owned_by: me
    created: 1754000000
api_token: "poe-secret-token-1234"
"""


@pytest.fixture
def models_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
async def mapped(models_file: Path, make_proxy: MakeProxy) -> Proxy:
    return await make_proxy()


async def listed(proxy: Proxy) -> dict[str, dict[str, Any]]:
    resp = await proxy.get("/v1/models")
    assert resp.status == 200
    return {m["id"]: m for m in (await resp.json())["data"]}


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 3.0) -> None:  # noqa: ASYNC109
    """Poll until ``check`` is true (what is awaited is a file on disk: no event)."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def csrf_token(proxy: Proxy) -> str:
    resp = await proxy.get("/admin/", headers=ADMIN)
    assert resp.status == 200
    match = re.search(r'name="csrf-token" content="([^"]+)"', await resp.text())
    assert match
    return match.group(1)


async def get_state(proxy: Proxy) -> dict[str, Any]:
    resp = await proxy.get("/admin/api/state", headers=ADMIN)
    assert resp.status == 200
    return await resp.json()  # type: ignore[no-any-return]


async def post_config(proxy: Proxy, body: dict[str, Any], *, token: str | None = None,
                      headers: dict[str, str] | None = None) -> Any:
    hdrs = {**ADMIN, **(headers or {})}
    if token is not None:
        hdrs["X-CSRF-Token"] = token
    return await proxy.post("/admin/api/config", json=body, headers=hdrs)


# ------------------------------------------------------------------------- the map in use


async def test_models_list_reflects_the_map(mapped: Proxy, fake_poe: FakePoe) -> None:
    models = await listed(mapped)
    poe = {m["id"]: m for m in fake_poe.models}
    assert "my-4o" in models and "gpt-4o" not in models  # alias shown, real name hidden
    assert "GPT-5.2" not in models and "gpt-5.2" not in models  # disabled (key in other case)
    assert models["my-private-bot"] == {"id": "my-private-bot", "object": "model",
                                        "created": 1754000000, "owned_by": "me"}
    assert models["my-4o"]["created"] == poe["gpt-4o"]["created"] // 1000  # seconds
    assert models["my-4o"]["owned_by"] == "OpenAI"
    assert set(models) == {"my-4o", "claude-sonnet-4.5", "gemini-2.5-flash", "nano-banana",
                           "flux-schnell", "assistant", "my-private-bot"}
    resp = await mapped.get("/v1/models/MY-4O")
    assert resp.status == 200 and (await resp.json())["id"] == "my-4o"
    resp = await mapped.get("/v1/models/gpt-5.2")
    await assert_openai_error(resp, 404, "invalid_request_error", "model_not_found")


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_by_alias_reaches_the_real_bot(mapped: Proxy, fake_poe: FakePoe,
                                                  stream: bool) -> None:
    fake_poe.script("gpt-4o", [text("Hi "), text("there"), done()])
    resp = await mapped.post("/v1/chat/completions", headers=AUTH,
                             json=chat_body(model="MY-4o", stream=stream))
    assert resp.status == 200
    assert fake_poe.last is not None and fake_poe.last.bot == "gpt-4o"
    if stream:
        payloads = parse_sse(await resp.read())
        assert stream_text(payloads) == "Hi there" and payloads[0]["model"] == "MY-4o"
    else:
        body = await resp.json()
        assert body["choices"][0]["message"]["content"] == "Hi there"
        assert body["model"] == "MY-4o"  # the name the client sent
    # The real name works too, and options apply in any case (replace_response here).
    await mapped.post("/v1/chat/completions", headers=AUTH,
                      json={"model": "Claude-Sonnet-4.5", "messages": [
                          {"role": "system", "content": "Be brief"},
                          {"role": "user", "content": "Hi"}]})
    assert fake_poe.last.bot == "claude-sonnet-4.5"
    assert [m["role"] for m in fake_poe.last.query] == ["user", "user"]


async def test_disabled_and_unlisted_models_get_404(models_file: Path, make_proxy: MakeProxy,
                                                    fake_poe: FakePoe) -> None:
    models_file.write_text(CONFIG.replace("enable: true", "enable: true\nallow_unlisted: false"))
    proxy = await make_proxy()
    for name in ("gpt-5.2", "gemini-2.5-flash"):
        resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=chat_body(model=name))
        await assert_openai_error(resp, 404, "invalid_request_error", "model_not_found", "model")
    assert fake_poe.queries == []
    assert set(await listed(proxy)) == {"my-4o", "claude-sonnet-4.5", "my-private-bot"}
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json=chat_body(model="my-private-bot"))
    assert resp.status == 200 and fake_poe.last is not None
    assert fake_poe.last.bot == "my-private-bot"


async def test_hand_edit_applies_without_restart(mapped: Proxy, models_file: Path) -> None:
    models_file.write_text(CONFIG.replace("mapping: my-4o", "mapping: four-oh"))

    async def renamed() -> bool:
        return "four-oh" in await listed(mapped)

    await wait_for(renamed)
    models_file.write_text("enable: true\nmodels: {gpt-4o: {enable: maybe}}\n")  # broken
    state: dict[str, Any] = {}

    async def reported() -> bool:
        state.update(await get_state(mapped))
        return state["error"] is not None

    await wait_for(reported)
    assert "four-oh" in await listed(mapped)  # the last good map stays in use
    assert state["error"]["line"] == 2 and "enable" in state["error"]["text"]
    models_file.unlink()

    async def defaults() -> bool:
        return "gpt-4o" in await listed(mapped)

    await wait_for(defaults)
    assert (await get_state(mapped))["error"] is None


async def test_stream_in_flight_keeps_its_model(mapped: Proxy, models_file: Path,
                                                fake_poe: FakePoe) -> None:
    fake_poe.script("gpt-4o", [text("one "), sleep(0.4), text("two"), done()])
    resp = await mapped.post("/v1/chat/completions", headers=AUTH,
                             json=chat_body(model="my-4o", stream=True))
    assert resp.status == 200
    models_file.write_text(CONFIG.replace("mapping: my-4o", "mapping: my-4o\n    enable: false"))

    async def disabled() -> bool:
        r = await mapped.post("/v1/chat/completions", headers=AUTH, json=chat_body(model="my-4o"))
        return r.status == 404

    await wait_for(disabled)
    payloads = parse_sse(await resp.read())  # the stream finished as it started
    assert stream_text(payloads) == "one two" and payloads[-1] == "[DONE]"


async def test_sighup_reloads_at_once(models_file: Path, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(reload_interval=3600)  # only SIGHUP can reload now
    if signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, None):
        pytest.fail("no SIGHUP handler installed")  # sending it would kill the test run
    models_file.write_text(CONFIG.replace("mapping: my-4o", "mapping: hup-4o"))
    os.kill(os.getpid(), signal.SIGHUP)

    async def reloaded() -> bool:
        return "hup-4o" in await listed(proxy)

    await wait_for(reloaded)
    await proxy.close()
    assert signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, None)  # removed on cleanup


async def test_models_list_is_fetched_with_the_api_token(
        models_file: Path, make_proxy: MakeProxy, aiohttp_server: AiohttpServer) -> None:
    seen: list[str | None] = []

    async def models(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"object": "list", "data": [{"id": "gpt-4o", "owned_by": "x"}]})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    server = await aiohttp_server(app)
    proxy = await make_proxy(poe_base_url=str(server.make_url("")).rstrip("/"))
    assert "my-4o" in await listed(proxy)
    assert seen == ["Bearer poe-secret-token-1234"]


# ------------------------------------------------------------------------- admin auth


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": encode_basic_auth("admin", "wrong")},
    {"Authorization": encode_basic_auth("root", "test-password")},
    {"Authorization": encode_basic_auth("admin", "test-password ")},
    {"Authorization": "Basic !!!not-base64"},
    {"Authorization": "Bearer test-password"},
], ids=["none", "wrong-password", "wrong-user", "password-prefix", "garbage", "bearer"])
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/admin/"), ("GET", "/admin/api/state"), ("GET", "/admin/static/admin.js"),
    ("GET", "/admin"), ("HEAD", "/admin/dashboard"), ("GET", "/admin/no-such-page"),
    ("GET", "/admin/static/no-such.js"), ("DELETE", "/admin/api/state"),
    ("PUT", "/admin/api/config"),
])
async def test_admin_needs_the_password(proxy: Proxy, headers: dict[str, str], method: str,
                                        path: str) -> None:
    resp = await proxy.request(method, path, headers=headers, allow_redirects=False)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="poe2openai admin", charset="UTF-8"'
    assert "test-password" not in await resp.text()


async def test_admin_page_renders(proxy: Proxy) -> None:
    resp = await proxy.get("/admin", headers=ADMIN, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "admin/"
    resp = await proxy.get("/admin/", headers=ADMIN)
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert 'src="static/admin.js' in page and 'href="static/admin.css' in page
    assert "http://" not in page and "https://" not in page  # no CDN, nothing remote
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"
    for asset, ctype in (("admin.js", "application/javascript"), ("admin.css", "text/css")):
        r = await proxy.get(f"/admin/static/{asset}", headers=ADMIN)
        assert r.status == 200 and r.content_type == ctype


@pytest.mark.parametrize("path", ["/admin/static/", "/admin/static/../auth.py",
                                  "/admin/static/%2e%2e/auth.py", "/admin/static/..%2fviews.py",
                                  "/admin/static/admin.js/x", "/admin/nope"])
async def test_admin_unknown_paths_get_404_after_login(proxy: Proxy, path: str) -> None:
    resp = await proxy.get(path, headers=ADMIN, allow_redirects=False)
    assert resp.status == 404
    assert "import" not in await resp.text()  # no source file served


async def test_admin_other_methods_get_405_after_login(proxy: Proxy) -> None:
    resp = await proxy.get("/admin/api/config", headers=ADMIN)
    assert resp.status == 405 and resp.headers["Allow"] == "POST"
    resp = await proxy.delete("/admin/api/state", headers=ADMIN)  # a write: CSRF first
    assert resp.status == 403


async def test_admin_assets_answer_conditional_requests(proxy: Proxy) -> None:
    first = await proxy.get("/admin/static/admin.css", headers=ADMIN)
    assert first.status == 200 and "Cache-Control" not in first.headers
    again = await proxy.get("/admin/static/admin.css", headers={
        **ADMIN, "If-None-Match": first.headers["ETag"]})
    assert again.status == 304


async def test_generated_password_is_logged_once(make_proxy: MakeProxy,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    for configured in ("", "123456"):  # unset, or the original project's default
        caplog.clear()
        proxy = await make_proxy(admin_password=configured)
        warnings = [r.getMessage() for r in caplog.records
                    if r.levelno == logging.WARNING and "admin password" in r.getMessage()]
        assert len(warnings) == 1, warnings
        password = re.search(r"password: (\S+)", warnings[0])
        assert password and len(password.group(1)) >= 20
        ok = {"Authorization": encode_basic_auth("admin", password.group(1))}
        assert (await proxy.get("/admin/", headers=ok)).status == 200
        weak = {"Authorization": encode_basic_auth("admin", configured)}
        assert (await proxy.get("/admin/", headers=weak)).status == 401
        # The password appears in that one line only.
        assert sum(password.group(1) in r.getMessage() for r in caplog.records) == 1


async def test_state_never_shows_the_token(mapped: Proxy) -> None:
    resp = await mapped.get("/admin/api/state", headers=ADMIN)
    raw = await resp.text()
    assert "poe-secret-token-1234" not in raw
    state = await resp.json()
    assert state["api_token"] == {"set": True, "hint": "poe…1234"}
    assert state["config"]["models"]["gpt-4o"]["mapping"] == "my-4o"
    assert [m["id"] for m in state["poe_models"]][:2] == ["gpt-4o", "gpt-5.2"]
    assert state["error"] is None and state["file"]["exists"] is True
    page = await (await mapped.get("/admin/", headers=ADMIN)).text()
    assert "poe-secret-token-1234" not in page


# ------------------------------------------------------------------------- admin saves


def page_edit(state: dict[str, Any]) -> dict[str, Any]:
    config = state["config"]
    config["models"]["gpt-4o"]["mapping"] = "renamed-4o"
    config["models"]["gemini-2.5-flash"] = {"enable": False}
    config["custom_models"].append({"id": "added-bot", "owned_by": None, "created": 1700000000})
    return {"version": state["version"], "config": config}


async def test_save_applies_at_once_and_keeps_comments(mapped: Proxy,
                                                       models_file: Path) -> None:
    token = await csrf_token(mapped)
    resp = await post_config(mapped, page_edit(await get_state(mapped)), token=token)
    assert resp.status == 200, await resp.text()
    new_state = await resp.json()
    assert new_state["config"]["models"]["gpt-4o"]["mapping"] == "renamed-4o"
    models = await listed(mapped)  # no waiting: the save reloads the map
    assert "renamed-4o" in models and "my-4o" not in models
    assert "gemini-2.5-flash" not in models and "added-bot" in models
    text = models_file.read_text()
    for line in ("# My model map (hand-written)", "enable: true   # master switch",
                 "  # --- OpenAI ---", "  # --- Anthropic ---", "# private bots",
                 "  - id: my-private-bot   # mine", 'api_token: "poe-secret-token-1234"'):
        assert line in text, text
    assert re.search(r"    mapping: renamed-4o +# what my editor asks for\n", text)
    assert "  gemini-2.5-flash:\n    enable: false\n" in text
    assert "  - id: added-bot\n    created: 1700000000\n" in text
    assert text.index("# --- Anthropic ---") < text.index("gemini-2.5-flash") \
        < text.index("# private bots")
    assert new_state["version"] == configfile.version_of(text.encode())


async def test_token_can_be_replaced_and_removed(mapped: Proxy, models_file: Path) -> None:
    token = await csrf_token(mapped)
    state = await get_state(mapped)
    body = {"version": state["version"], "config": state["config"], "api_token": "poe-new-key-5678"}
    resp = await post_config(mapped, body, token=token)
    assert resp.status == 200
    assert (await resp.json())["api_token"]["hint"] == "poe…5678"
    assert "poe-new-key-5678" in models_file.read_text()
    assert stat.S_IMODE(models_file.stat().st_mode) & 0o077 == 0  # not world-readable
    state = await get_state(mapped)
    resp = await post_config(mapped, {"version": state["version"], "config": state["config"],
                                      "api_token": None}, token=token)
    assert resp.status == 200 and (await resp.json())["api_token"] == {"set": False, "hint": None}
    assert "api_token" not in models_file.read_text()
    # A token sent inside "config" is ignored: only the explicit field sets it.
    state = await get_state(mapped)
    resp = await post_config(mapped, {"version": state["version"],
                                      "config": {**state["config"], "api_token": "sneaky"}},
                             token=token)
    assert resp.status == 200 and "sneaky" not in models_file.read_text()


@pytest.mark.parametrize(("headers", "use_token"), [
    ({}, False),
    ({"X-CSRF-Token": "wrong"}, False),
    ({"Sec-Fetch-Site": "cross-site"}, True),
    ({"Sec-Fetch-Site": "same-site"}, True),
    ({"Origin": "https://evil.example"}, True),
    ({"Origin": "null"}, True),
], ids=["no-token", "wrong-token", "cross-site", "same-site", "foreign-origin", "null-origin"])
async def test_writes_are_protected_against_csrf(mapped: Proxy, models_file: Path,
                                                 headers: dict[str, str], use_token: bool) -> None:
    token = await csrf_token(mapped)
    resp = await post_config(mapped, page_edit(await get_state(mapped)),
                             token=token if use_token else None, headers=headers)
    assert resp.status == 403
    assert (await resp.json())["error"]["message"]
    assert models_file.read_text() == CONFIG


async def test_same_origin_write_is_accepted(mapped: Proxy) -> None:
    token = await csrf_token(mapped)
    origin = str(mapped.make_url("")).rstrip("/")
    resp = await post_config(mapped, page_edit(await get_state(mapped)), token=token,
                             headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert resp.status == 200


async def test_stale_save_is_refused(mapped: Proxy, models_file: Path) -> None:
    token = await csrf_token(mapped)
    state = await get_state(mapped)
    hand_edit = CONFIG.replace("mapping: my-4o", "mapping: by-hand")
    models_file.write_text(hand_edit)
    resp = await post_config(mapped, page_edit(state), token=token)
    assert resp.status == 409
    assert "changed on disk" in (await resp.json())["error"]["message"]
    assert models_file.read_text() == hand_edit  # the hand edit is not lost
    fresh = await get_state(mapped)  # loading again gives the new version, which saves
    assert fresh["config"]["models"]["gpt-4o"]["mapping"] == "by-hand"
    resp = await post_config(mapped, page_edit(fresh), token=token)
    assert resp.status == 200
    saved = models_file.read_text()  # the page's edit is in the file, on top of the hand edit
    assert "mapping: renamed-4o" in saved and "mapping: by-hand" not in saved
    assert "added-bot" in saved and "renamed-4o" in await listed(mapped)


async def test_no_save_over_a_broken_file(mapped: Proxy, models_file: Path) -> None:
    token = await csrf_token(mapped)
    state = await get_state(mapped)
    models_file.write_text("models: [\n")
    assert (await get_state(mapped))["error"] is not None
    resp = await post_config(mapped, page_edit(state), token=token)
    assert resp.status == 409 and "has an error" in (await resp.json())["error"]["message"]
    assert models_file.read_text() == "models: [\n"


async def test_invalid_save_is_refused(mapped: Proxy, models_file: Path) -> None:
    token = await csrf_token(mapped)
    state = await get_state(mapped)
    state["config"]["models"]["gemini-2.5-flash"] = {"mapping": "MY-4O"}  # alias taken
    resp = await post_config(mapped, {"version": state["version"], "config": state["config"]},
                             token=token)
    assert resp.status == 400
    assert "already used" in (await resp.json())["error"]["message"]
    for bad in ({"version": 1, "config": {}}, {"config": {}}, [1]):
        resp = await post_config(mapped, bad, token=token)  # type: ignore[arg-type]
        assert resp.status == 400
    resp = await mapped.post("/admin/api/config", data=b"{nope", headers={
        **ADMIN, "X-CSRF-Token": token, "Content-Type": "application/json"})
    assert resp.status == 400
    assert models_file.read_text() == CONFIG


async def test_first_save_creates_the_file(proxy: Proxy, tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    assert not path.exists()
    state = await get_state(proxy)
    assert state["version"] == "missing" and state["file"]["exists"] is False
    state["config"]["enable"] = True
    state["config"]["models"]["gpt-4o"] = {"mapping": "first"}
    resp = await post_config(proxy, {"version": state["version"], "config": state["config"]},
                             token=await csrf_token(proxy))
    assert resp.status == 200
    text = path.read_text()
    assert text.startswith("# models.yaml: which Poe bots")  # the commented template
    assert "models:\n  gpt-4o:\n    mapping: first\n" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert "first" in await listed(proxy)


async def test_save_is_atomic_and_keeps_permissions(mapped: Proxy, models_file: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    models_file.chmod(0o750)
    token = await csrf_token(mapped)
    resp = await post_config(mapped, page_edit(await get_state(mapped)), token=token)
    assert resp.status == 200
    # the owner's bits are kept; a file that holds api_token loses group and other access
    assert stat.S_IMODE(models_file.stat().st_mode) == 0o700
    assert sorted(p.name for p in models_file.parent.iterdir()) == ["models.yaml"]  # no temp left
    # A write that fails half-way leaves the old file whole, and no temporary file.
    before = models_file.read_text()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(configfile.os, "fsync", disk_full)
    state = await get_state(mapped)
    state["config"]["models"]["gpt-4o"]["mapping"] = "never-written"
    resp = await post_config(mapped, {"version": state["version"], "config": state["config"]},
                             token=token)
    assert resp.status == 500 and "No space left" in (await resp.json())["error"]["message"]
    assert models_file.read_text() == before
    assert sorted(p.name for p in models_file.parent.iterdir()) == ["models.yaml"]
    assert "renamed-4o" in await listed(mapped)  # the server is fine


async def test_save_through_a_symlink_keeps_the_link(models_file: Path, tmp_path: Path,
                                                     make_proxy: MakeProxy) -> None:
    real = tmp_path / "real" / "models.yaml"
    real.parent.mkdir()
    models_file.rename(real)
    models_file.symlink_to(real)
    proxy = await make_proxy()
    resp = await post_config(proxy, page_edit(await get_state(proxy)),
                             token=await csrf_token(proxy))
    assert resp.status == 200
    assert models_file.is_symlink() and "renamed-4o" in real.read_text()


async def test_concurrent_saves_are_serialised(mapped: Proxy, models_file: Path) -> None:
    token = await csrf_token(mapped)
    state = await get_state(mapped)
    bodies = []
    for i in range(6):
        config = page_edit(await get_state(mapped))["config"]
        config["models"]["gpt-4o"]["mapping"] = f"writer-{i}"
        bodies.append({"version": state["version"], "config": config})
    results = await asyncio.gather(*(post_config(mapped, b, token=token) for b in bodies))
    statuses = sorted(r.status for r in results)
    assert statuses == [200, 409, 409, 409, 409, 409]  # one wins; nobody overwrites it blindly
    text = models_file.read_text()
    assert len(re.findall(r"mapping: writer-\d", text)) == 1
    winner = re.search(r"mapping: (writer-\d)", text)
    assert winner and winner.group(1) in await listed(mapped)


async def test_per_model_parameters_from_the_file_reach_poe(models_file: Path,
                                                            make_proxy: MakeProxy,
                                                            fake_poe: FakePoe) -> None:
    models_file.write_text(CONFIG.replace(
        "  claude-sonnet-4.5:\n",
        "  Gemini-2.5-Flash:\n    parameters: {thinking_budget: 0}\n  claude-sonnet-4.5:\n"))
    proxy = await make_proxy()
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json=chat_body(model="gemini-2.5-flash"))
    assert resp.status == 200
    assert fake_poe.last is not None and fake_poe.last.bot == "Gemini-2.5-Flash"
    assert fake_poe.last.query[-1].get("parameters") == {"thinking_budget": 0}


async def test_deeply_nested_parameters_from_the_page_are_refused(mapped: Proxy,
                                                                  models_file: Path) -> None:
    token = await csrf_token(mapped)
    state = await get_state(mapped)
    nested: Any = 1
    for _ in range(200):
        nested = {"k": nested}
    state["config"]["models"]["gpt-4o"]["parameters"] = {"x": nested}
    resp = await post_config(mapped, {"version": state["version"], "config": state["config"]},
                             token=token)
    assert resp.status == 400
    assert "levels deep" in (await resp.json())["error"]["message"]
    assert models_file.read_text() == CONFIG
