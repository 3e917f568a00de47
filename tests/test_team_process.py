"""A real server process: SIGHUP reloads the proxy keys even when the file kept its size and
modification time, SIGTERM exits cleanly, LOG_FORMAT=json, and no secret in any log line
at LOG_LEVEL=debug."""

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

from poe2openai.team.keyfile import FILE_NAME, create_key
from tests.fake_poe import FakePoe, done, text
from tests.helpers import chat_body
from tests.test_team_keys import rewrite_in_place

POE_KEY = "poe-server-key-SECRET-0123456789"
ADMIN_PASSWORD = "admin-pass-SECRET-42"
METRICS_TOKEN = "metrics-token-SECRET-77"
CLIENT_KEY = "client-poe-key-SECRET-5555"
ADMIN = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()}

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


async def _reloads(http: aiohttp.ClientSession, url: str) -> float:
    async with http.get(url + "/metrics",
                        headers={"Authorization": f"Bearer {METRICS_TOKEN}"}) as resp:
        body = await resp.text()
    m = re.search(r'poe2openai_config_reloads_total\{file="proxy-keys.json",result="ok"\} '
                  r'([0-9.]+)', body)
    return float(m.group(1)) if m else 0.0


async def test_sighup_sigterm_json_logs_and_no_secrets(fake_poe: FakePoe,
                                                       tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    _, first = create_key(path, "one")
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1",
           "POE_BASE_URL": fake_poe.base_url, "CONFIG_DIR": str(tmp_path),
           "SHUTDOWN_TIMEOUT": "2", "LOG_LEVEL": "debug", "LOG_FORMAT": "json",
           "ADMIN_PASSWORD": ADMIN_PASSWORD, "POE_API_KEY": POE_KEY,
           "METRICS_TOKEN": METRICS_TOKEN, "CONFIG_RELOAD_INTERVAL": "3600"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "poe2openai", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    secrets_ = [POE_KEY, ADMIN_PASSWORD, METRICS_TOKEN, CLIENT_KEY, first]
    try:
        async with aiohttp.ClientSession() as http:
            async def up() -> bool:
                try:
                    async with http.get(url + "/healthz") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            assert await _wait_until(up)
            fake_poe.script(None, [text("Hello"), done()])
            assert await _reloads(http, url) == 1
            # Every kind of secret goes past the server once.
            for key in (first, CLIENT_KEY, "p2o-unknown"):
                async with http.post(url + "/v1/chat/completions", json=chat_body(),
                                     headers={"Authorization": f"Bearer {key}"}) as resp:
                    await resp.read()
            async with http.get(url + "/metrics", headers={"Authorization": "Bearer nope"}):
                pass
            async with http.get(url + "/admin/api/keys",
                                headers={"Authorization": "Basic YWRtaW46d3Jvbmc="}) as resp:
                assert resp.status == 401
            async with http.get(url + "/admin/dashboard", headers=ADMIN) as resp:
                csrf = re.search(r'name="csrf-token" content="([^"]+)"', await resp.text())
            assert csrf is not None
            async with http.post(url + "/admin/api/keys", json={"name": "web"},
                                 headers={**ADMIN, "X-CSRF-Token": csrf.group(1)}) as resp:
                assert resp.status == 201
                made = (await resp.json())["secret"]
            secrets_.append(made)
            async with http.get(url + "/v1/models",
                                headers={"Authorization": f"Bearer {made}"}) as resp:
                await resp.read()

            # An in-place edit that keeps inode, size and mtime: polling cannot see it...
            rewrite_in_place(path, '"one"', '"uno"')
            reloads = await _reloads(http, url)
            proc.send_signal(signal.SIGHUP)  # ... SIGHUP reads it anyway

            async def renamed() -> bool:
                async with http.get(url + "/admin/api/keys", headers=ADMIN) as resp:
                    names = {k["name"] for k in (await resp.json())["keys"]}
                return "uno" in names and "one" not in names

            assert await _wait_until(renamed)
            assert await _reloads(http, url) == reloads + 1
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    log = out.decode()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]  # all JSON
    assert any(e["message"].startswith("SIGHUP") for e in lines)
    access = [e["access"] for e in lines if "access" in e]
    assert {"method", "path", "face", "model", "key", "status", "duration", "ttfb",
            "bytes"} <= set(access[0])
    assert any(a["path"] == "/v1/chat/completions" for a in access)
    for secret in secrets_:
        assert secret not in log, f"a secret ({secret[:6]}…) is in the log"
        assert secret[8:] not in log
