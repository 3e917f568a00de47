"""Load generator: concurrent clients that read every byte and check every answer.

Targets: ``--kind openai`` posts Chat Completions to ``{url}/v1/chat/completions``;
``--kind responses`` posts a Responses request to ``{url}/v1/responses`` (``store: false``)
and ``--kind messages`` an Anthropic Messages request to ``{url}/v1/messages`` (both
streamed, read as their typed events); ``--kind direct`` posts a Poe query to
``{url}/bot/<name>`` and reads Poe's SSE itself.
The model / bot name encodes what the fake upstream sends (``benchlib.Spec``), so every
answer is checked against the exact text the upstream sent (see ``benchlib.check_stream``).

Modes: by default ``--concurrency`` workers send requests back to back (each worker keeps
one keep-alive connection) until ``--duration`` seconds or ``--requests`` requests. With
``--hold N`` it opens N streams (one connection each, ``Connection: close``, started at
``--ramp`` per second), prints ``OPEN <n> <seconds>`` once all have delivered their first
chunk, and waits for them to end.

The HTTP/1.1 client is a small asyncio protocol (uvloop when available) rather than
aiohttp's: on a 2-core machine the load generator shares the CPU with what it measures,
and this one costs a fraction of aiohttp's per read.

Talks to a driver on stdout/stdin: prints ``READY`` after the warm-up requests, waits for
a ``GO`` line when ``--wait-go`` is given, and finishes with ``RESULT <json>``.

    python bench/load.py --kind openai --url http://127.0.0.1:8080 --concurrency 50 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from benchlib import Spec, check_stream, cpu_seconds, new_loop_policy, raise_nofile

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}]

#: The same tool in the Responses and Messages shapes.
RESPONSES_TOOL = {"type": "function", **{k: v for k, v in TOOLS[0]["function"].items()}}
MESSAGES_TOOL = {"name": "get_weather", "description": TOOLS[0]["function"]["description"],
                 "input_schema": TOOLS[0]["function"]["parameters"]}

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILER, _TO_CLOSE, _DONE = range(8)


class ClientError(Exception):
    pass


class Result:
    """What one request produced."""

    __slots__ = ("bytes", "error", "frames", "mode", "total", "ttfc")

    def __init__(self) -> None:
        self.ttfc: float | None = None
        self.total = 0.0
        self.bytes = 0
        self.frames = 0  # content-bearing frames (or Poe text events) received
        self.error: str | None = None
        self.mode = ""  # "raw" / "parsed" (see benchlib.check_stream)


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one exchange at a time; the body goes to ``sink``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.done: asyncio.Future[int] | None = None
        self.sink: Callable[[bytes], None] = _ignore
        self.buf = b""
        self.state = _DONE
        self.left = 0
        self.status = 0
        self.keep = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.state == _TO_CLOSE:
            self._finish([])
        elif self.done is not None and not self.done.done():
            self.done.set_exception(ClientError("connection closed mid-response"))

    def send(self, request: bytes, sink: Callable[[bytes], None]) -> asyncio.Future[int]:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.sink, self.buf, self.state, self.status = sink, b"", _HEAD, 0
        self.transport.write(request)
        return self.done

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        self.buf = b""
        pos, n = 0, len(buf)
        out: list[bytes] = []  # body bytes of this read, handed to the sink in one call
        while pos < n:
            state = self.state
            if state == _CHUNK_SIZE:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    self.buf = buf[pos:]
                    break
                size = int(buf[pos:end].split(b";", 1)[0], 16)
                pos = end + 2
                if not size:
                    self.state, self.left = _TRAILER, 2
                elif pos + size + 2 <= n:  # the whole chunk is here
                    out.append(buf[pos:pos + size])
                    pos += size + 2
                else:
                    self.state, self.left = _CHUNK_DATA, size
            elif state == _CHUNK_DATA or state == _LENGTH:
                take = min(self.left, n - pos)
                out.append(buf[pos:pos + take])
                pos += take
                self.left -= take
                if not self.left:
                    if state == _LENGTH:
                        self._finish(out)
                        return
                    self.state, self.left = _CHUNK_CRLF, 2
            elif state == _CHUNK_CRLF or state == _TRAILER:
                take = min(self.left, n - pos)
                pos += take
                self.left -= take
                if not self.left:
                    if state == _TRAILER:
                        self._finish(out)
                        return
                    self.state = _CHUNK_SIZE
            elif state == _TO_CLOSE:
                out.append(buf[pos:])
                break
            elif state == _HEAD:
                rest = self._head(buf[pos:])
                if rest is None:
                    return
                buf, pos, n = rest, 0, len(rest)
                if self.state == _DONE:
                    return
            else:
                break  # nothing asked for: ignore
        if out:
            self.sink(out[0] if len(out) == 1 else b"".join(out))

    def _head(self, buf: bytes) -> bytes | None:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self.buf = buf
            return None
        lines = buf[:end].split(b"\r\n")
        self.status = int(lines[0].split(b" ", 2)[1])
        chunked, length = False, None
        self.keep = lines[0].startswith(b"HTTP/1.1")
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"content-length":
                length = int(value)
            elif name == b"connection":
                self.keep = value.strip().lower() != b"close"
        if chunked:
            self.state = _CHUNK_SIZE
        elif length is not None:
            self.state, self.left = _LENGTH, length
            if not length:
                self._finish([])
        else:
            self.state, self.keep = _TO_CLOSE, False
        return buf[end + 4:]

    def _finish(self, out: list[bytes]) -> None:
        if out:
            self.sink(b"".join(out))
        self.state = _DONE
        if not self.keep and self.transport is not None:
            self.transport.close()
            self.closed = True
        if self.done is not None and not self.done.done():
            self.done.set_result(self.status)


def _ignore(data: bytes) -> None:
    pass


class Exchange:
    """Parses one response body (OpenAI SSE, Poe SSE, Responses or Messages events, or a
    JSON completion) as it arrives."""

    __slots__ = ("buf", "content", "done", "kind", "on_open", "reasoning", "res", "start")

    def __init__(self, kind: str, res: Result, start: float,
                 on_open: Callable[[], None] | None) -> None:
        self.kind, self.res, self.start, self.on_open = kind, res, start, on_open
        self.buf = b""
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.done = False

    def feed(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if self.kind == "json":
            self.buf = buf
            return
        if b"\r" in buf:  # CRLF line ends (a trailing CR waits for its LF in the buffer)
            buf = buf.replace(b"\r\n", b"\n")
        if b"\n\n" not in buf:
            self.buf = buf
            return
        frames = buf.split(b"\n\n")
        self.buf = frames.pop()
        if self.kind == "poe":
            self._poe(frames)
        elif self.kind == "sse":
            self._openai(frames)
        else:
            self._typed(frames)

    def _opened(self) -> None:
        self.res.ttfc = time.perf_counter() - self.start
        if self.on_open is not None:
            self.on_open()

    def _openai(self, frames: list[bytes]) -> None:
        res = self.res
        for frame in frames:
            if not frame.startswith(b"data:"):
                continue  # comments (keep-alives)
            payload = frame[5:].strip()
            if payload == b"[DONE]":
                self.done = True
                continue
            obj = orjson.loads(payload)
            if "error" in obj:
                res.error = "error chunk: " + str(obj["error"].get("message"))[:80]
                continue
            choices = obj.get("choices")
            if not choices:
                continue
            delta = choices[0].get("delta") or {}
            c, r = delta.get("content"), delta.get("reasoning_content")
            if c or r:
                res.frames += 1
                if c:
                    self.content.append(c)
                if r:
                    self.reasoning.append(r)
                if res.ttfc is None:
                    self._opened()

    def _typed(self, frames: list[bytes]) -> None:
        """Responses (``response.*``) or Anthropic Messages events: ``event:`` then ``data:``."""
        res = self.res
        for frame in frames:
            event, _, data = frame.partition(b"\n")
            if not event.startswith(b"event:"):
                continue  # comments (keep-alives)
            name = event[6:].strip()
            text = thought = None
            if name == b"response.output_text.delta":
                text = orjson.loads(data[5:])["delta"]
            elif name == b"response.reasoning_summary_text.delta":
                thought = orjson.loads(data[5:])["delta"]
            elif name == b"content_block_delta":
                delta = orjson.loads(data[5:])["delta"]
                text, thought = delta.get("text"), delta.get("thinking")
            elif name in (b"response.completed", b"message_stop"):
                self.done = True
            elif name in (b"response.failed", b"response.incomplete", b"error"):
                res.error = "error event: " + name.decode()[:60]
            if text or thought:
                res.frames += 1
                if text:
                    self.content.append(text)
                if thought:
                    self.reasoning.append(thought)
                if res.ttfc is None:
                    self._opened()

    def _poe(self, frames: list[bytes]) -> None:
        for frame in frames:
            event, _, data = frame.partition(b"\n")
            if event == b"event: text":
                self.content.append(orjson.loads(data[5:])["text"])
                self.res.frames += 1
                if self.res.ttfc is None:
                    self._opened()
            elif event == b"event: done":
                self.done = True
            elif event == b"event: error":
                self.res.error = "error event"

    def end(self) -> None:
        """The body is complete."""
        if self.kind == "json":
            message = orjson.loads(self.buf)["choices"][0]["message"]
            self.content.append(message.get("content") or "")
            self.reasoning.append(message.get("reasoning_content") or "")
            self.res.frames = 1
            self.done = True
            self._opened()
        elif not self.done and self.res.error is None:
            self.res.error = "stream ended without " + {
                "poe": "done", "sse": "[DONE]", "responses": "response.completed",
                "messages": "message_stop"}[self.kind]


class Client:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        url = urlsplit(args.url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.spec = Spec(args.count, args.size, args.delay_ms, args.think)
        self.kind = ("poe" if args.kind == "direct" else "json" if args.no_stream
                     else "sse" if args.kind == "openai" else args.kind)
        self.opened = 0
        self._requests: dict[tuple[Spec, bool], bytes] = {}

    def request(self, spec: Spec, close: bool) -> bytes:
        """The request bytes for ``spec`` (built once)."""
        key = (spec, close)
        raw = self._requests.get(key)
        if raw is not None:
            return raw
        prompt = "Write the benchmark answer."
        body: dict[str, Any]
        if self.args.kind == "direct":
            path = f"/bot/{spec.bot}"
            body = {"version": "1.2", "type": "query", "user_id": "", "conversation_id": "",
                    "message_id": "",
                    "query": [{"role": "user", "content": prompt, "content_type": "text/markdown"}]}
        elif self.args.kind == "responses":
            path = "/v1/responses"
            body = {"model": spec.bot, "input": prompt, "stream": True, "store": False}
        elif self.args.kind == "messages":
            path = "/v1/messages"
            body = {"model": spec.bot, "max_tokens": 4096, "stream": True,
                    "messages": [{"role": "user", "content": prompt}]}
        else:
            path = "/v1/chat/completions"
            body = {"model": spec.bot, "messages": [{"role": "user", "content": prompt}],
                    "stream": not self.args.no_stream}
        if self.args.tools:
            body["tools"] = (TOOLS if self.args.kind in ("openai", "direct")
                             else [RESPONSES_TOOL] if self.args.kind == "responses"
                             else [MESSAGES_TOOL])
        data = orjson.dumps(body)
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Authorization: Bearer bench-key\r\nContent-Type: application/json\r\n"
                f"Accept: text/event-stream, application/json\r\nContent-Length: {len(data)}\r\n"
                + ("Connection: close\r\n" if close else "") + "\r\n")
        raw = self._requests[key] = head.encode() + data
        return raw

    async def connect(self) -> Connection:
        _, conn = await asyncio.get_running_loop().create_connection(
            Connection, self.host, self.port)
        return conn

    async def one(self, spec: Spec, conn: Connection | None = None,
                  on_open: Callable[[], None] | None = None) -> tuple[Result, Connection | None]:
        """One request; reuses ``conn`` when it is still open. Returns the connection to reuse."""
        res = Result()
        start = time.perf_counter()
        ex = Exchange(self.kind, res, start, on_open)
        try:
            async with asyncio.timeout(self.args.read_timeout):
                if conn is None or conn.closed:
                    conn = await self.connect()
                status = await conn.send(self.request(spec, close=self.args.hold > 0), ex.feed)
            if status != 200:
                res.error = f"HTTP {status}"
            else:
                ex.end()
        except (OSError, TimeoutError, ClientError, ValueError, KeyError, IndexError) as exc:
            res.error = f"{type(exc).__name__}: {exc}"[:80]
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            conn = None
        res.total = time.perf_counter() - start
        text, thought = "".join(ex.content), "".join(ex.reasoning)
        res.bytes = len(text.encode()) + len(thought.encode())
        if res.error is None:
            res.mode = check_stream(spec, text, thought)
            if res.mode.startswith("error"):
                res.error, res.mode = res.mode, ""
        return res, conn


def summarise(results: list[Result], elapsed: float, spec: Spec) -> dict[str, Any]:
    ok = [r for r in results if r.error is None]
    errors = Counter(r.error for r in results if r.error is not None)
    return {
        "requests": len(results),
        "ok": len(ok),
        "errors": len(results) - len(ok),
        "error_kinds": dict(errors.most_common(5)),
        "elapsed": elapsed,
        "ttfc_ms": [round(r.ttfc * 1000, 3) for r in ok if r.ttfc is not None],
        "total_ms": [round(r.total * 1000, 3) for r in ok],
        "content_bytes": sum(r.bytes for r in ok),
        "frames": sum(r.frames for r in ok),
        "events": len(ok) * spec.n_events,
        "modes": dict(Counter(r.mode for r in ok)),
    }


async def run(args: argparse.Namespace) -> None:
    client = Client(args)
    spec = client.spec
    # Warm-up: the same shape without delays, results discarded.
    warm = Spec(min(spec.count, 20), spec.size, 0.0, spec.think)
    width = max(1, min(args.concurrency, args.warmup))
    conns: list[Connection | None] = [None] * width
    for _ in range(max(1, args.warmup // width)):
        done = await asyncio.gather(*(client.one(warm, conns[i]) for i in range(width)))
        conns = [conn for _, conn in done]
    for conn in conns:
        if conn is not None and conn.transport is not None:
            conn.transport.close()
    # Keep the collector's full passes (100+ ms with thousands of open streams) out of
    # the measurement: what exists now is frozen, and collections start less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 1000)
    print("READY", flush=True)
    if args.wait_go:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    cpu0 = cpu_seconds(os.getpid())
    out = await (hold(client, args) if args.hold else closed_loop(client, args))
    out["cpu_s"] = cpu_seconds(os.getpid()) - cpu0
    print("RESULT " + orjson.dumps(out).decode(), flush=True)


async def closed_loop(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    results: list[Result] = []
    sent = 0
    start = time.perf_counter()
    deadline = start + args.duration

    async def worker() -> None:
        nonlocal sent
        conn = None
        while sent < args.requests and time.perf_counter() < deadline:
            sent += 1
            res, conn = await client.one(client.spec, conn)
            results.append(res)
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return summarise(results, time.perf_counter() - start, client.spec)


async def hold(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    n = args.hold
    all_open = asyncio.Event()
    failed = 0

    def on_open() -> None:
        client.opened += 1
        if client.opened + failed >= n:
            all_open.set()

    async def one(i: int) -> Result:
        nonlocal failed
        await asyncio.sleep(i / args.ramp)
        res, _ = await client.one(client.spec, None, on_open)
        if res.ttfc is None:  # failed before its first chunk
            failed += 1
            if client.opened + failed >= n:
                all_open.set()
        return res

    start = time.perf_counter()
    tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
    try:
        await asyncio.wait_for(all_open.wait(), args.duration)
    except TimeoutError:
        pass
    print(f"OPEN {client.opened} {time.perf_counter() - start:.3f}", flush=True)
    results = await asyncio.gather(*tasks)
    out = summarise(results, time.perf_counter() - start, client.spec)
    out["opened"] = client.opened
    return out


def main_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="target root, e.g. http://127.0.0.1:8080")
    p.add_argument("--kind", choices=("openai", "responses", "messages", "direct"),
                   default="openai", help="what to send: Chat Completions, Responses, "
                   "Anthropic Messages, or Poe's own query")
    p.add_argument("--count", type=int, default=100, help="chunks the upstream sends")
    p.add_argument("--size", type=int, default=20, help="characters per chunk")
    p.add_argument("--delay-ms", type=float, default=0.0, help="upstream inter-chunk delay")
    p.add_argument("--think", action="store_true", help="upstream sends a thinking block first")
    p.add_argument("--tools", action="store_true", help="the request carries one tool")
    p.add_argument("--no-stream", action="store_true", help="non-streaming requests")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--requests", type=int, default=1_000_000, help="request-count cap")
    p.add_argument("--duration", type=float, default=10.0,
                   help="time cap in s (with --hold: longest wait for all streams to open)")
    p.add_argument("--hold", type=int, default=0, help="open this many streams at once")
    p.add_argument("--ramp", type=float, default=1000.0, help="--hold: streams started per s")
    p.add_argument("--warmup", type=int, default=20, help="warm-up requests (not measured)")
    p.add_argument("--read-timeout", type=float, default=120.0,
                   help="longest a single request may take, s")
    p.add_argument("--wait-go", action="store_true", help="wait for a line on stdin after READY")
    return p


def main() -> None:
    p = main_parser()
    args = p.parse_args()
    if args.no_stream and args.kind in ("responses", "messages"):
        p.error("--no-stream is only for --kind openai")
    raise_nofile()
    new_loop_policy()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
