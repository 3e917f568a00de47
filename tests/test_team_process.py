"""A real server process: every face, streamed and not, with clients' own Poe keys and then
with proxy keys, and their errors, at LOG_LEVEL=debug with LOG_FORMAT=json; no secret in any
log line; SIGHUP reloads models.yaml and the proxy keys even when a file kept its size and
modification time; SIGTERM exits cleanly."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from poe2openai.team.keyfile import FILE_NAME
from tests.faces import FACES, PATHS, body, key_headers
from tests.fake_poe import FakePoe, done, text
from tests.test_team_keys import rewrite_in_place

POE_KEY = "poe-server-key-SECRET-0123456789"
ADMIN_PASSWORD = "admin-pass-SECRET-42"
METRICS_TOKEN = "metrics-token-SECRET-77"
CLIENT_KEY = "client-poe-key-SECRET-5555"
ADMIN = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()}
WRONG_ADMIN = {"Authorization": "Basic " + base64.b64encode(
    b"admin:wrong-SECRET-password").decode()}
#: The same length, so that the in-place edit keeps the file's size.
MODELS_YAML = "enable: true\nmodels:\n  GPT-4o:\n    mapping: {alias}\n"
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\2" * 64).decode()

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="needs POSIX signals")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_until(check: Any, limit: float = 10.0) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        result = await check()
        if result or loop.time() > end:
            return result
        await asyncio.sleep(0.05)


class Server:
    """The client side of one server process."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url

    async def ask(self, face: str, key: str | None, model: str = "GPT-4o", *,
                  stream: bool = False, bearer: bool = False,
                  payload: dict[str, Any] | None = None, path: str | None = None,
                  ) -> tuple[int, bytes]:
        async with self.http.post(self.url + (path or PATHS[face]),
                                  json=payload or body(face, model, stream=stream),
                                  headers=key_headers(face, key, bearer=bearer)) as resp:
            return resp.status, await resp.read()

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.http.get(self.url + path, headers=headers or {}) as resp:
            raw = await resp.read()
            return resp.status, (json.loads(raw) if resp.content_type == "application/json"
                                 else raw.decode())

    async def reloads(self, file: str) -> float:
        _, text_ = await self.get("/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
        m = re.search(rf'poe2openai_config_reloads_total\{{file="{re.escape(file)}",'
                      r'result="ok"\} ([0-9.]+)', text_)
        return float(m.group(1)) if m else 0.0

    async def create_key(self, name: str, models: str = "") -> str:
        _, page = await self.get("/admin/dashboard", ADMIN)
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert csrf is not None
        async with self.http.post(self.url + "/admin/api/keys",
                                  json={"name": name, "models": models},
                                  headers={**ADMIN, "X-CSRF-Token": csrf.group(1)}) as resp:
            assert resp.status == 201
            return str((await resp.json())["secret"])


async def _every_face(server: Server, fake: FakePoe, key: str, upstream_key: str) -> None:
    """Each face, streamed and not, with this key; Poe sees ``upstream_key``."""
    for face in FACES:
        for stream in (False, True):
            status, raw = await server.ask(face, key, stream=stream)
            assert status == 200, raw
            assert b"Hello" in raw
            assert fake.last is not None and fake.last.api_key == upstream_key
        # The other header, an image upload (Chat), a Poe error before and during an answer.
        status, _ = await server.ask(face, key, "aaaa-model", bearer=face == "messages")
        assert status == 200 and fake.last.bot == "GPT-4o"
        assert (await server.ask(face, key, "scenario-error-first"))[0] >= 500
        status, raw = await server.ask(face, key, "scenario-error-mid", stream=True)
        assert status == 200 and b"error" in raw
    status, _ = await server.ask("chat", key, payload={"model": "GPT-4o", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Look"},
                                     {"type": "image_url", "image_url": {"url": PNG}}]}]})
    assert status == 200 and fake.uploads[-1].api_key == upstream_key
    status, _ = await server.ask("chat", key, payload={"model": "GPT-4o", "messages": "nope"})
    assert status == 400
    status, counted = await server.ask("messages", key, path="/v1/messages/count_tokens")
    assert status == 200 and json.loads(counted)["input_tokens"] > 0


async def test_every_face_at_debug_level_logs_no_secret(fake_poe: FakePoe,
                                                        tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text(MODELS_YAML.format(alias="aaaa-model"))
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1",
           "POE_BASE_URL": fake_poe.base_url,
           "POE_FILE_UPLOAD_URL": fake_poe.base_url + "/poe_api/file_upload_3RD_PARTY_POST",
           "CONFIG_DIR": str(tmp_path), "SHUTDOWN_TIMEOUT": "2", "LOG_LEVEL": "debug",
           "LOG_FORMAT": "json", "ADMIN_PASSWORD": ADMIN_PASSWORD, "POE_API_KEY": POE_KEY,
           "METRICS_TOKEN": METRICS_TOKEN, "CONFIG_RELOAD_INTERVAL": "3600"}
    log_path = tmp_path / "server.log"  # a file, not a pipe: a full pipe would block it
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "poe2openai", env=env, stdout=log_fd,
            stderr=asyncio.subprocess.STDOUT)
    finally:
        os.close(log_fd)
    url = f"http://127.0.0.1:{port}"
    secrets_ = [POE_KEY, ADMIN_PASSWORD, METRICS_TOKEN, CLIENT_KEY, ADMIN["Authorization"][6:],
                WRONG_ADMIN["Authorization"][6:], "wrong-SECRET-password"]
    try:
        async with aiohttp.ClientSession() as http:
            server = Server(http, url)

            async def up() -> bool:
                try:
                    return (await server.get("/healthz"))[0] == 200
                except aiohttp.ClientError:
                    return False

            assert await _wait_until(up)
            fake_poe.script(None, [text("Hello"), text(" there"), done()])

            # No proxy keys yet: the client's own Poe key goes upstream, on every face.
            await _every_face(server, fake_poe, CLIENT_KEY, CLIENT_KEY)
            for face in FACES:
                assert (await server.ask(face, None))[0] == 401
            assert (await server.get("/metrics", {"Authorization": "Bearer nope"}))[0] == 401
            assert (await server.get("/admin/api/keys", WRONG_ADMIN))[0] == 401

            # Proxy keys, made on the admin page: the server's key goes upstream.
            asked = len(fake_poe.queries)
            web = await server.create_key("web")
            first = await server.create_key("one", "gpt-4o claude-*")
            secrets_ += [web, first]
            await _every_face(server, fake_poe, web, POE_KEY)
            for face in FACES:
                for key in (CLIENT_KEY, "p2o-unknown", None):
                    assert (await server.ask(face, key))[0] == 401
                assert (await server.ask(face, first, "o3"))[0] == 403
            status, listed = await server.get("/v1/models", key_headers("chat", first))
            assert status == 200 and {m["id"] for m in listed["data"]} <= {
                "gpt-4o", "claude-sonnet-4.5"}
            status, listed = await server.get("/v1/models", key_headers("messages", web))
            assert status == 200 and "aaaa-model" in {m["id"] for m in listed["data"]}
            assert {q.api_key for q in fake_poe.queries[asked:]} == {POE_KEY}

            # In-place edits that keep inode, size and mtime: polling cannot see them...
            rewrite_in_place(tmp_path / FILE_NAME, '"one"', '"uno"')
            rewrite_in_place(tmp_path / "models.yaml", "aaaa-model", "bbbb-model")
            keys_before = await server.reloads("proxy-keys.json")
            models_before = await server.reloads("models.yaml")
            proc.send_signal(signal.SIGHUP)  # ... SIGHUP reads them anyway

            async def reloaded() -> bool:
                _, keys = await server.get("/admin/api/keys", ADMIN)
                names = {k["name"] for k in keys["keys"]}
                _, models = await server.get("/v1/models", key_headers("chat", web))
                ids = {m["id"] for m in models["data"]}
                return names == {"web", "uno"} and "bbbb-model" in ids and "aaaa-model" not in ids

            assert await _wait_until(reloaded)
            assert await server.reloads("proxy-keys.json") == keys_before + 1
            assert await _wait_until(
                lambda: _at_least(server, "models.yaml", models_before + 1))
            status, _ = await server.ask("messages", web, "bbbb-model")
            assert status == 200 and fake_poe.last is not None and fake_poe.last.bot == "GPT-4o"
            assert (await server.ask("chat", web, "aaaa-model"))[0] == 200  # passes through
            assert fake_poe.last.bot == "aaaa-model"
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    log = log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]  # all JSON
    assert any(e["level"] == "debug" for e in lines)  # debug really is on
    assert any(e["message"].startswith("SIGHUP") for e in lines)
    access = [e["access"] for e in lines if "access" in e]
    assert {"method", "path", "face", "model", "key", "status", "duration", "ttfb",
            "bytes"} <= set(access[0])
    seen = {(a["face"], a["status"], a["key"]) for a in access}
    for face in FACES:
        assert (face, 200, "-") in seen and (face, 200, "web") in seen
        assert (face, 401, "-") in seen and (face, 403, "one") in seen
    assert {a["path"] for a in access} >= {*PATHS.values(), "/v1/messages/count_tokens"}
    for secret in secrets_:
        assert secret not in log, f"a secret ({secret[:6]}…) is in the log"
        assert secret[8:] not in log


async def _at_least(server: Server, file: str, count: float) -> bool:
    return await server.reloads(file) >= count
