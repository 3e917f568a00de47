"""Where the server keeps its files: without CONFIG_DIR, a per-user folder
($XDG_CONFIG_HOME/poe2openai, else ~/.config/poe2openai), never the current directory. A real
server process started from a checkout of the repository changes none of its files."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from poe2openai.modelfile import default_text
from tests.fake_poe import FakePoe
from tests.helpers import chat_body

ROOT = Path(__file__).resolve().parents[1]
ADMIN_PASSWORD = "data-folder-admin-pass"
ADMIN = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()}
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\3" * 64).decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CONFIG_DIR"}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "xdg"), **extra)
    return env


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="needs POSIX signals")
async def test_server_from_a_checkout_writes_only_to_its_user_folder(
        fake_poe: FakePoe, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "config", checkout / "config",
                    ignore=shutil.ignore_patterns("*.sqlite3*", "proxy-keys.json*"))
    (checkout / "config" / "proxy-keys.json").write_text('{"version": 1, "keys": []}\n')
    before = _snapshot(checkout)
    data = tmp_path / "xdg" / "poe2openai"
    port = _free_port()
    env = _env(tmp_path, PORT=str(port), HOST="127.0.0.1", POE_BASE_URL=fake_poe.base_url,
               POE_FILE_UPLOAD_URL=fake_poe.base_url + "/poe_api/file_upload_3RD_PARTY_POST",
               ADMIN_PASSWORD=ADMIN_PASSWORD, SHUTDOWN_TIMEOUT="2", LOG_LEVEL="info")
    log_path = tmp_path / "server.log"
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "poe2openai", env=env, cwd=checkout, stdout=log_fd,
            stderr=asyncio.subprocess.STDOUT)
    finally:
        os.close(log_fd)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(url + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            assert data.is_dir() and stat.S_IMODE(data.stat().st_mode) == 0o700
            # No models.yaml in the folder: the shipped defaults (every name passes through).
            async with http.get(url + "/admin/api/state", headers=ADMIN) as resp:
                state = await resp.json()
            assert state["file"] == {"path": str(data / "models.yaml"), "exists": False}
            assert state["config"]["enable"] is False and state["error"] is None
            # The client's own key passes through: ./config/proxy-keys.json is not read.
            async with http.post(url + "/v1/chat/completions", headers={
                    "Authorization": "Bearer client-key"}, json=chat_body(
                    model="GPT-4o", messages=[{"role": "user", "content": [
                        {"type": "text", "text": "Look"},
                        {"type": "image_url", "image_url": {"url": PNG}}]}])) as resp:
                assert resp.status == 200, await resp.text()
            async with http.get(url + "/admin/", headers=ADMIN) as resp:
                csrf = re.search(r'name="csrf-token" content="([^"]+)"', await resp.text())
            assert csrf is not None
            write = {**ADMIN, "X-CSRF-Token": csrf.group(1)}
            config = {**state["config"], "enable": True, "models": {"GPT-4o": {
                "mapping": "my-4o", "enable": True, "replace_response": False,
                "tool_mode": "native", "reasoning_format": "reasoning_content",
                "parameters": {}}}}
            async with http.post(url + "/admin/api/config", headers=write,
                                 json={"version": state["version"], "config": config}) as resp:
                assert resp.status == 200, await resp.text()
            async with http.post(url + "/admin/api/keys", headers=write,
                                 json={"name": "alice"}) as resp:
                assert resp.status == 201
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    log = log_path.read_text()
    assert f"config: {data}" in log
    assert "./config holds proxy-keys.json from an earlier run" in log  # pointed out once
    assert _snapshot(checkout) == before  # nothing in the checkout changed
    files = set(_snapshot(data))
    assert {"models.yaml", "proxy-keys.json", "usage.sqlite3", "upload-cache.sqlite3"} <= files
    saved = (data / "models.yaml").read_text()
    assert saved.startswith(default_text().split("\n", 1)[0])  # the shipped file, edited
    assert "mapping: my-4o" in saved
    # The keys command finds the same folder without CONFIG_DIR.
    keys = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "poe2openai", "keys", "list", env=_env(tmp_path), cwd=checkout,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(keys.communicate(), 30)
    assert keys.returncode == 0 and b"alice" in out, err
    assert _snapshot(checkout) == before


def test_home_is_the_fallback(tmp_path: Path) -> None:
    env = _env(tmp_path)
    del env["XDG_CONFIG_HOME"]
    made = subprocess.run([sys.executable, "-m", "poe2openai", "keys", "create", "bob"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "home" / ".config" / "poe2openai" / "proxy-keys.json").exists()
    assert not (tmp_path / "config").exists()


def test_deployments_name_their_folder() -> None:
    """Docker and the systemd unit set CONFIG_DIR to a folder they may write (the unit's
    ProtectHome=true would make the per-user default read-only)."""
    docker = (ROOT / "Dockerfile").read_text()
    assert "CONFIG_DIR=/data" in docker and 'VOLUME ["/data"]' in docker
    unit = (ROOT / "config" / "poe2openai.service").read_text()
    [folder] = re.findall(r"^Environment=CONFIG_DIR=(\S+)$", unit, re.M)
    assert re.search(rf"^ReadWritePaths=.*{re.escape(folder)}", unit, re.M)
    assert ":/data" in (ROOT / "config" / "docker-compose.yml").read_text()
