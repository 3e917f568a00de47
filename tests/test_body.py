"""Reading request bodies: slow senders, the read deadline, the memory budget, the worker
slots for parsing, and bodies whose Content-Encoding does not match their bytes.

Slow senders are real sockets that send part of a body and then stop; nothing here waits
for a fixed time to pass: deadlines are set short, and the tests wait for conditions.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from poe2openai import keys
from poe2openai.api.budget import BodyBudget
from poe2openai.app import LARGE_BODY_READS, create_app
from poe2openai.settings import Settings
from tests.fake_poe import FakePoe, done, text
from tests.helpers import AUTH, assert_openai_error, chat_body

Proxy = TestClient[Any, Any]

#: Bounds a request that must not hang, so a regression fails here instead of at the
#: suite's timeout. Generous: these requests take milliseconds.
NO_HANG = 30


class CountingSemaphore(asyncio.Semaphore):
    """A semaphore that counts how often it was taken."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.taken = 0

    async def acquire(self) -> bool:
        self.taken += 1
        return await super().acquire()


@pytest.fixture
def build(aiohttp_client: AiohttpClient, settings_factory: Callable[..., Settings],
          fake_poe: FakePoe) -> Callable[..., Awaitable[Proxy]]:
    """The proxy, with a counting LARGE_BODIES semaphore and optionally a small budget."""
    fake_poe.script(None, [text("ok"), done()])

    async def make(budget: int | None = None, **overrides: Any) -> Proxy:
        app = create_app(settings_factory(**overrides))
        app[keys.LARGE_BODIES] = CountingSemaphore(LARGE_BODY_READS)
        if budget is not None:
            app[keys.BODY_BUDGET] = BodyBudget(budget)
        return await aiohttp_client(app)

    return make


def sem(proxy: Proxy) -> CountingSemaphore:
    s = proxy.app[keys.LARGE_BODIES]
    assert isinstance(s, CountingSemaphore)
    return s


def budget(proxy: Proxy) -> BodyBudget:
    return proxy.app[keys.BODY_BUDGET]


async def until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 - polling the server's state
        await asyncio.sleep(0.005)


class RawClient:
    """One HTTP/1.1 request over a plain socket, sent in as many pieces as the test likes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, proxy: Proxy, headers: dict[str, str]) -> RawClient:
        reader, writer = await asyncio.open_connection(proxy.server.host, proxy.server.port)
        head = "POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in {**AUTH, "Content-Type": "application/json",
                                           **headers}.items()) + "\r\n"
        writer.write(head.encode())
        await writer.drain()
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self) -> tuple[int, dict[str, str], Any]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
        body = await self.reader.readexactly(int(headers["content-length"]))
        return int(status_line.split()[1]), headers, json.loads(body)

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def raw_clients() -> AsyncIterator[list[RawClient]]:
    opened: list[RawClient] = []
    yield opened
    for c in opened:
        c.close()


def chat_bytes(content: str) -> bytes:
    return json.dumps(chat_body(content)).encode()


# --- 9: slow senders hold nothing that others need ----------------------------------


async def test_slow_senders_do_not_block_large_or_chunked_requests(
        build: Callable[..., Awaitable[Proxy]], raw_clients: list[RawClient],
        fake_poe: FakePoe) -> None:
    proxy = await build()
    # More slow senders than there are worker slots, each declaring a 2 MB body and
    # sending one byte of it.
    for _ in range(LARGE_BODY_READS + 1):
        c = await RawClient.open(proxy, {"Content-Length": "2000000"})
        raw_clients.append(c)
        await c.send(b"{")
    await until(lambda: budget(proxy).used == LARGE_BODY_READS + 1)  # all are being read
    assert not sem(proxy).locked()

    big = chat_bytes("x" * 1_500_000)
    resp = await asyncio.wait_for(proxy.post("/v1/chat/completions", data=io.BytesIO(big), headers={
        **AUTH, "Content-Type": "application/json"}), NO_HANG)
    assert resp.status == 200, await resp.text()

    async def chunked() -> AsyncIterator[bytes]:
        yield chat_bytes("small")

    resp = await asyncio.wait_for(proxy.post("/v1/chat/completions", data=chunked(), headers={
        **AUTH, "Content-Type": "application/json"}), NO_HANG)
    assert resp.status == 200, await resp.text()
    assert [len(r.body["query"][0]["content"]) for r in fake_poe.requests] == [1_500_000, 5]


async def test_large_bodies_are_parsed_in_a_worker_slot(
        build: Callable[..., Awaitable[Proxy]], fake_poe: FakePoe) -> None:
    """Over 1 MiB (with or without a Content-Length): parsed while holding a worker slot;
    smaller ones never take one. While every slot is busy, a large body waits for one
    after it has been received, and small bodies, chunked too, go through."""
    proxy = await build()
    headers = {**AUTH, "Content-Type": "application/json"}
    big = chat_bytes("é" * 700_000)

    async def chunked(data: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(data), 65536):
            yield data[i:i + 65536]

    assert (await proxy.post("/v1/chat/completions", data=io.BytesIO(big),
                             headers=headers)).status == 200
    assert (await proxy.post("/v1/chat/completions", data=chunked(big),
                             headers=headers)).status == 200
    assert sem(proxy).taken == 2
    assert (await proxy.post("/v1/chat/completions", data=chunked(chat_bytes("hi")),
                             headers=headers)).status == 200
    assert sem(proxy).taken == 2

    for _ in range(LARGE_BODY_READS):  # every slot busy
        await sem(proxy).acquire()
    waiting = asyncio.ensure_future(
        proxy.post("/v1/chat/completions", data=io.BytesIO(big), headers=headers))
    await until(lambda: budget(proxy).used == len(big))  # received, now waiting for a slot
    resp = await asyncio.wait_for(proxy.post("/v1/chat/completions",
                                             data=chunked(chat_bytes("hi")), headers=headers),
                                  NO_HANG)
    assert resp.status == 200
    assert not waiting.done()
    sem(proxy).release()
    assert (await waiting).status == 200
    assert [r.body["query"][0]["content"] for r in fake_poe.requests] == [
        "é" * 700_000, "é" * 700_000, "hi", "hi", "é" * 700_000]
    assert budget(proxy).used == 0


# --- 9: the read deadline ---------------------------------------------------------------


@pytest.mark.parametrize("framing", [{"Content-Length": "100"},
                                     {"Transfer-Encoding": "chunked"}])
async def test_a_body_not_received_in_time_gets_408(
        build: Callable[..., Awaitable[Proxy]], raw_clients: list[RawClient],
        fake_poe: FakePoe, framing: dict[str, str]) -> None:
    proxy = await build(body_read_timeout=0.2)
    c = await RawClient.open(proxy, framing)
    raw_clients.append(c)
    await c.send(b"5\r\n{\"mod\r\n" if "Transfer-Encoding" in framing else b"{\"mod")
    status, headers, body = await asyncio.wait_for(c.response(), NO_HANG)
    assert status == 408
    assert body["error"]["code"] == "request_timeout"
    assert body["error"]["type"] == "invalid_request_error"
    assert "BODY_READ_TIMEOUT" in body["error"]["message"]
    assert headers["connection"] == "close"
    assert budget(proxy).used == 0 and fake_poe.requests == []
    # The server is fine afterwards.
    resp = await proxy.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    assert resp.status == 200


# --- 9: bounded memory -------------------------------------------------------------------


async def test_bodies_share_a_memory_budget(
        build: Callable[..., Awaitable[Proxy]], raw_clients: list[RawClient]) -> None:
    proxy = await build(budget=100_000)
    first = chat_bytes("a" * 80_000)
    c = await RawClient.open(proxy, {"Content-Length": str(len(first))})
    raw_clients.append(c)
    await c.send(first[:60_000])
    await until(lambda: budget(proxy).used == 60_000)

    second = chat_body("b" * 50_000)
    resp = await proxy.post("/v1/chat/completions", json=second, headers=AUTH)
    await assert_openai_error(resp, 503, "server_error", "server_busy")
    assert resp.headers["retry-after"] == "1" and resp.headers["x-should-retry"] == "true"
    assert budget(proxy).used == 60_000

    await c.send(first[60_000:])
    status, _, body = await asyncio.wait_for(c.response(), NO_HANG)
    assert status == 200, body
    assert budget(proxy).used == 0
    resp = await proxy.post("/v1/chat/completions", json=second, headers=AUTH)
    assert resp.status == 200


async def test_a_declared_size_over_the_limit_is_refused_before_reading(
        build: Callable[..., Awaitable[Proxy]], raw_clients: list[RawClient]) -> None:
    proxy = await build(max_request_size=4096)
    c = await RawClient.open(proxy, {"Content-Length": "5000"})  # and no body at all
    raw_clients.append(c)
    status, _, body = await asyncio.wait_for(c.response(), NO_HANG)
    assert status == 413 and body["error"]["code"] == "request_too_large"

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b" " * 2000

    resp = await proxy.post("/v1/chat/completions", data=chunked(), headers=AUTH)
    await assert_openai_error(resp, 413, "invalid_request_error", "request_too_large")
    assert budget(proxy).used == 0


# --- 7: Content-Encoding that does not match the body -------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_content_encoding_of_an_uncompressed_body_is_a_400(
        build: Callable[..., Awaitable[Proxy]], fake_poe: FakePoe, encoding: str,
        caplog: pytest.LogCaptureFixture) -> None:
    proxy = await build()
    resp = await proxy.post("/v1/chat/completions", data=chat_bytes("hi"), headers={
        **AUTH, "Content-Type": "application/json", "Content-Encoding": encoding})
    err = await assert_openai_error(resp, 400, "invalid_request_error", "invalid_request")
    assert encoding in err["message"]
    assert resp.headers["Connection"] == "close"
    assert fake_poe.requests == [] and budget(proxy).used == 0
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    # Compressed bodies are fine, and so is the server.
    packed = gzip.compress(chat_bytes("hi")) if encoding == "gzip" else zlib.compress(
        chat_bytes("hi"))
    resp = await proxy.post("/v1/chat/completions", data=packed, headers={
        **AUTH, "Content-Type": "application/json", "Content-Encoding": encoding})
    assert resp.status == 200
    assert fake_poe.last.body["query"][0]["content"] == "hi"
