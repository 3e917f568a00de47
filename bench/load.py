"""Load generator: concurrent clients that read every byte and check every answer.

Targets: ``--kind openai`` posts Chat Completions to ``{url}/v1/chat/completions``;
``--kind direct`` posts a Poe query to ``{url}/bot/<name>`` and reads Poe's SSE itself.
The model / bot name encodes what the fake upstream sends (``benchlib.Spec``), so every
answer is checked against the exact text the upstream sent (see ``benchlib.check_stream``).

Modes: by default ``--concurrency`` workers send requests back to back until
``--duration`` seconds or ``--requests`` requests. With ``--hold N`` it opens N streams
(started at ``--ramp`` per second), prints ``OPEN <n>`` once all of them have delivered
their first chunk, and waits for them to end.

Talks to a driver on stdout/stdin: prints ``READY`` after the warm-up requests, waits for
a ``GO`` line when ``--wait-go`` is given, and finishes with ``RESULT <json>``.

    python bench/load.py --kind openai --url http://127.0.0.1:8080 --concurrency 50 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
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
HEADERS = {"Authorization": "Bearer bench-key", "Content-Type": "application/json"}


class Result:
    """What one request produced."""

    __slots__ = ("bytes", "error", "frames", "mode", "total", "ttfc")

    def __init__(self) -> None:
        self.ttfc: float | None = None
        self.total = 0.0
        self.bytes = 0
        self.frames = 0  # content-bearing frames received
        self.error: str | None = None
        self.mode = ""  # "raw" / "parsed" (see benchlib.check_stream)


class Client:
    def __init__(self, args: argparse.Namespace, session: aiohttp.ClientSession) -> None:
        self.args = args
        self.session = session
        self.spec = Spec(args.count, args.size, args.delay_ms, args.think)
        self.stream = not args.no_stream
        self.opened = 0

    def request(self, spec: Spec) -> tuple[str, bytes]:
        messages = [{"role": "user", "content": "Write the benchmark answer."}]
        if self.args.kind == "direct":
            body: dict[str, Any] = {
                "version": "1.2", "type": "query", "user_id": "", "conversation_id": "",
                "message_id": "",
                "query": [{"role": "user", "content": messages[0]["content"],
                           "content_type": "text/markdown"}],
            }
            if self.args.tools:
                body["tools"] = TOOLS
            return f"{self.args.url}/bot/{spec.bot}", orjson.dumps(body)
        body = {"model": spec.bot, "messages": messages, "stream": self.stream}
        if self.args.tools:
            body["tools"] = TOOLS
        return f"{self.args.url}/v1/chat/completions", orjson.dumps(body)

    async def one(self, spec: Spec, on_open: Any = None) -> Result:
        res = Result()
        url, body = self.request(spec)
        start = time.perf_counter()
        content: list[str] = []
        reasoning: list[str] = []
        try:
            async with self.session.post(url, data=body, headers=HEADERS) as resp:
                if resp.status != 200:
                    await resp.read()
                    res.error = f"HTTP {resp.status}"
                elif self.args.kind == "direct":
                    await self._read_poe(resp, res, start, content, on_open)
                elif self.stream:
                    await self._read_openai_stream(resp, res, start, content, reasoning, on_open)
                else:
                    raw = await resp.read()
                    res.ttfc = time.perf_counter() - start
                    message = orjson.loads(raw)["choices"][0]["message"]
                    content.append(message.get("content") or "")
                    reasoning.append(message.get("reasoning_content") or "")
                    res.frames = 1
                    if on_open:
                        on_open()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, KeyError) as exc:
            res.error = type(exc).__name__
        res.total = time.perf_counter() - start
        text, thought = "".join(content), "".join(reasoning)
        res.bytes = len(text.encode()) + len(thought.encode())
        if res.error is None:
            res.mode = check_stream(spec, text, thought)
            if res.mode.startswith("error"):
                res.error, res.mode = res.mode, ""
        return res

    async def _read_openai_stream(self, resp: aiohttp.ClientResponse, res: Result, start: float,
                                  content: list[str], reasoning: list[str], on_open: Any) -> None:
        buf = b""
        done = False
        async for data in resp.content.iter_any():
            buf = buf + data if buf else data
            if b"\n\n" not in buf:
                continue
            frames = buf.split(b"\n\n")
            buf = frames.pop()
            for frame in frames:
                if not frame.startswith(b"data:"):
                    continue  # comments (keep-alives)
                payload = frame[5:].strip()
                if payload == b"[DONE]":
                    done = True
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
                        content.append(c)
                    if r:
                        reasoning.append(r)
                    if res.ttfc is None:
                        res.ttfc = time.perf_counter() - start
                        if on_open:
                            on_open()
        if not done and res.error is None:
            res.error = "stream ended without [DONE]"

    async def _read_poe(self, resp: aiohttp.ClientResponse, res: Result, start: float,
                        content: list[str], on_open: Any) -> None:
        buf = b""
        done = False
        async for data in resp.content.iter_any():
            buf = buf + data if buf else data
            if b"\r" in buf:
                buf = buf.replace(b"\r\n", b"\n")
            if b"\n\n" not in buf:
                continue
            frames = buf.split(b"\n\n")
            buf = frames.pop()
            for frame in frames:
                event, _, data_line = frame.partition(b"\n")
                if event == b"event: text":
                    content.append(orjson.loads(data_line[5:])["text"])
                    res.frames += 1
                    if res.ttfc is None:
                        res.ttfc = time.perf_counter() - start
                        if on_open:
                            on_open()
                elif event == b"event: done":
                    done = True
                elif event == b"event: error":
                    res.error = "error event"
        if not done and res.error is None:
            res.error = "stream ended without done"


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
        "cpu_s": cpu_seconds(os.getpid()),
    }


async def run(args: argparse.Namespace) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=args.read_timeout)
    connector = aiohttp.TCPConnector(limit=0, force_close=args.hold > 0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector,
                                     auto_decompress=False) as session:
        client = Client(args, session)
        spec = client.spec
        # Warm-up: the same shape without delays, results discarded.
        warm = Spec(min(spec.count, 20), spec.size, 0.0, spec.think)
        for _ in range(max(1, args.warmup // max(1, min(args.concurrency, args.warmup)))):
            await asyncio.gather(*(client.one(warm)
                                   for _ in range(min(args.concurrency, args.warmup))))
        print("READY", flush=True)
        if args.wait_go:
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if args.hold:
            out = await hold(client, args)
        else:
            out = await closed_loop(client, args)
    print("RESULT " + orjson.dumps(out).decode(), flush=True)


async def closed_loop(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    results: list[Result] = []
    sent = 0
    start = time.perf_counter()
    deadline = start + args.duration

    async def worker() -> None:
        nonlocal sent
        while sent < args.requests and time.perf_counter() < deadline:
            sent += 1
            results.append(await client.one(client.spec))

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return summarise(results, time.perf_counter() - start, client.spec)


async def hold(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    n = args.hold
    all_open = asyncio.Event()
    finished = 0

    def on_open() -> None:
        client.opened += 1
        if client.opened + finished >= n:
            all_open.set()

    async def one(i: int) -> Result:
        nonlocal finished
        await asyncio.sleep(i / args.ramp)
        res = await client.one(client.spec, on_open)
        if res.ttfc is None:  # failed before its first chunk
            finished += 1
            if client.opened + finished >= n:
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="target root, e.g. http://127.0.0.1:8080")
    p.add_argument("--kind", choices=("openai", "direct"), default="openai")
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
    p.add_argument("--read-timeout", type=float, default=60.0)
    p.add_argument("--wait-go", action="store_true", help="wait for a line on stdin after READY")
    args = p.parse_args()
    raise_nofile()
    new_loop_policy()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
