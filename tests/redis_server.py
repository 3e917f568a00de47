"""A real ``redis-server`` on a free loopback port, for the tests of ``REDIS_URL``.

``redis_server`` (a fixture: import it into a test module) starts one without persistence
and stops it at the end; tests needing it are skipped, saying why, where the server is not
installed (Debian's package ``redis-server``; ``scripts/test.sh`` installs it when run as
root). ``await server.stop()`` / ``await server.start()`` take it away and bring it back
on the same port (empty, as a restarted Redis without persistence is); ``pause()`` /
``resume()`` freeze it (SIGSTOP), so calls hang until they time out.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

__all__ = ["RedisServer", "free_port", "redis_server", "running_redis"]

NOT_INSTALLED = ("redis-server is not installed (Debian package 'redis-server'; "
                 "scripts/test.sh installs it when run as root)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, binary: str, folder: Path, password: str = "") -> None:
        self.binary = binary
        self.folder = folder
        self.password = password
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        assert self.proc is None
        self.proc = await asyncio.create_subprocess_exec(
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.folder), "--loglevel", "warning",
            *(["--requirepass", self.password] if self.password else []),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        loop = asyncio.get_running_loop()
        end = loop.time() + 10
        while True:
            try:
                answer = await self.command("PING")
                if answer.startswith(b"+PONG"):
                    return
            except OSError:
                pass
            if self.proc.returncode is not None or loop.time() > end:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)  # in case it was paused
            proc.kill()
        await proc.wait()

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    async def command(self, *args: str) -> bytes:
        """One command over a raw connection (no client library): its first reply line."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            if self.password:
                writer.write(_encode("AUTH", self.password))
                await reader.readline()
            writer.write(_encode(*args))
            return await reader.readline()
        finally:
            writer.close()
            await writer.wait_closed()


def _encode(*args: str) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for a in args:
        parts.append(f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n")
    return b"".join(parts)


@contextlib.asynccontextmanager
async def running_redis(folder: Path, password: str = "") -> AsyncIterator[RedisServer]:
    """A started server (skips the test when redis-server is not installed)."""
    binary = shutil.which("redis-server") or (
        "/usr/sbin/redis-server" if Path("/usr/sbin/redis-server").exists() else None)
    if binary is None:
        pytest.skip(NOT_INSTALLED)
    folder.mkdir(exist_ok=True)
    server = RedisServer(binary, folder, password)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    async with running_redis(tmp_path / "redis") as server:
        yield server
