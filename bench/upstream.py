"""Fake Poe upstream for the benchmark: a small raw-asyncio HTTP/1.1 server (uvloop if present).

``POST /bot/<name>`` answers with Poe's SSE: ``meta``, one ``text`` event per chunk, ``done``.
What it sends is chosen by the bot name (see ``benchlib.Spec``), e.g. ``bench-n100-s20-d0-t0``
= 100 chunks of 20 characters, no delay, no thinking block; other names get the defaults
given on the command line. Every event is a separate HTTP chunk and a separate write; with
no delay the server still yields to the event loop between events (a fast model streaming
tokens, not one burst). Keep-alive is supported (chunked encoding), ``Connection: close``
is honoured. ``GET /healthz`` answers ``ok``; ``GET /stats`` gives connection and request
counters. The request body is not parsed.

    python bench/upstream.py --port 8090 [--count 100 --size 20 --delay-ms 0 --crlf]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from benchlib import Spec, new_loop_policy, raise_nofile

_MAX_HEAD = 64 * 1024


class Stats:
    connections = 0
    requests = 0
    open_streams = 0


def _chunk(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


class Frames:
    """The wire bytes of one answer, rendered once per spec."""

    def __init__(self, spec: Spec, nl: bytes) -> None:
        def event(name: bytes, data: object) -> bytes:
            return _chunk(b"event: " + name + nl + b"data: " + orjson.dumps(data) + nl + nl)

        self.meta = event(b"meta", {"content_type": "text/markdown", "suggested_replies": False})
        self.texts = [event(b"text", {"text": t}) for t in spec.events]
        self.done = event(b"done", {}) + b"0\r\n\r\n"
        self.delay = spec.delay_ms / 1000


class Connection(asyncio.Protocol):
    def __init__(self, server: Upstream) -> None:
        self.server = server
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.can_write: asyncio.Event = asyncio.Event()
        self.can_write.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        Stats.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.can_write.set()
        if self.task is not None:
            self.task.cancel()

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.task is None:
            self._next()

    def _next(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > _MAX_HEAD and self.transport:
                self.transport.close()
            return
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        if len(self.buf) < end + 4 + length:
            return  # the body is still coming
        del self.buf[:end + 4 + length]
        parts = head[0].split(" ")
        method, target = parts[0], parts[1] if len(parts) > 1 else "/"
        keep = (parts[-1] == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                and "chunked" not in headers.get("transfer-encoding", ""))
        self.task = asyncio.get_running_loop().create_task(self._serve(method, target, keep))

    async def _serve(self, method: str, target: str, keep: bool) -> None:
        Stats.requests += 1
        try:
            if method == "POST" and target.startswith("/bot/"):
                await self._answer(target[5:].split("?")[0], keep)
            elif target == "/healthz":
                self._simple(200, b'{"status":"ok"}', keep)
            elif target == "/stats":
                self._simple(200, orjson.dumps({
                    "connections": Stats.connections, "requests": Stats.requests,
                    "open_streams": Stats.open_streams}), keep)
            elif target.startswith("/v1/models"):
                self._simple(200, b'{"object":"list","data":[]}', keep)
            else:
                self._simple(404, b'{"error":"not found"}', keep)
        except asyncio.CancelledError:
            return
        self.task = None
        if self.transport is None:
            return
        if not keep:
            self.transport.close()
        elif self.buf:
            self._next()

    def _simple(self, status: int, body: bytes, keep: bool) -> None:
        if self.transport is None:
            return
        reason = b"OK" if status == 200 else b"Not Found"
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
            % (status, reason, len(body), b"" if keep else b"Connection: close\r\n", body))

    async def _answer(self, bot: str, keep: bool) -> None:
        frames = self.server.frames(bot)
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                b"Transfer-Encoding: chunked\r\n" + (b"" if keep else b"Connection: close\r\n")
                + b"\r\n")
        delay = frames.delay
        Stats.open_streams += 1
        try:
            first = True
            for text in frames.texts:
                if self.transport is None:
                    return
                if first:
                    self.transport.write(head + frames.meta + text)
                    first = False
                else:
                    self.transport.write(text)
                await asyncio.sleep(delay)
                if not self.can_write.is_set():
                    await self.can_write.wait()
            if self.transport is not None:
                self.transport.write(frames.done if not first else head + frames.meta + frames.done)
        finally:
            Stats.open_streams -= 1


class Upstream:
    def __init__(self, default: Spec, crlf: bool) -> None:
        self.default = default
        self.nl = b"\r\n" if crlf else b"\n"
        self.cache: dict[str, Frames] = {}

    def frames(self, bot: str) -> Frames:
        frames = self.cache.get(bot)
        if frames is None:
            spec = Spec.from_bot(bot) or self.default
            frames = self.cache[bot] = Frames(spec, self.nl)
        return frames


async def serve(args: argparse.Namespace) -> None:
    upstream = Upstream(Spec(args.count, args.size, args.delay_ms, args.think), args.crlf)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(upstream), args.host, args.port,
                                      backlog=4096, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    print(f"fake Poe listening on http://{args.host}:{port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (printed)")
    parser.add_argument("--count", type=int, default=100, help="default chunk count")
    parser.add_argument("--size", type=int, default=20, help="default chunk size (characters)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="default inter-chunk delay")
    parser.add_argument("--think", action="store_true", help="default: send a thinking block")
    parser.add_argument("--crlf", action="store_true", help="end SSE lines in CRLF, not LF")
    args = parser.parse_args()
    raise_nofile()
    new_loop_policy()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
