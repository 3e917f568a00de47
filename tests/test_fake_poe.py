"""Tests of the fake Poe server itself, with a plain aiohttp client (no proxy involved)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.fake_poe import (
    ANSWERS,
    MEDIA_URL,
    SCENARIOS,
    FakePoe,
    Received,
    close,
    comment,
    done,
    error,
    hang,
    http_error,
    meta,
    raw,
    reset,
    sleep,
    start_fake_poe,
    text,
)

KEY = "good-key"


def query_body(content: str = "Hi", role: str = "user", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": "1.2",
        "type": "query",
        "query": [{"role": role, "content": content, "content_type": "text/markdown"}],
        "user_id": "",
        "conversation_id": "",
        "message_id": "",
    }
    body.update(extra)
    return body


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[aiohttp.ClientResponse, list[bytes], Exception | None]:
    """POST and collect the body as the reads arrived; a broken body gives the exception."""
    chunks: list[bytes] = []
    err: Exception | None = None
    async with session.post(
        url,
        json=query_body() if body is None else body,
        headers=auth() if headers is None else headers,
    ) as resp:
        try:
            async for chunk in resp.content.iter_any():
                chunks.append(chunk)
        except aiohttp.ClientPayloadError as exc:
            err = exc
    return resp, chunks, err


# A small WHATWG-style SSE parser (whole body at once; an unterminated event is dropped).
def parse_sse(data: bytes) -> list[tuple[str, str]]:
    lines = re.split(r"\r\n|\r|\n", data.decode("utf-8"))
    events: list[tuple[str, str]] = []
    name, data_lines = "", []
    for line in lines[:-1]:  # the last element is an unterminated line (or "")
        if line == "":
            if data_lines:
                events.append((name or "message", "\n".join(data_lines)))
            name, data_lines = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data_lines.append(value)
    return events


def final_answer(events: list[tuple[str, str]]) -> tuple[str, dict[str, Any] | None, bool]:
    """(answer for index 0, error data or None, saw done)."""
    parts: list[str] = []
    for name, payload in events:
        data = json.loads(payload)
        assert isinstance(data, dict), (name, payload)
        if data.get("index", 0) != 0:
            continue
        if name == "text":
            parts.append(data["text"])
        elif name == "replace_response":
            parts = [data["text"]]
        elif name == "json":
            for choice in data.get("choices", []):
                content = choice.get("delta", {}).get("content")
                if content:
                    parts.append(content)
        elif name == "error":
            return "".join(parts), data, False
        elif name == "done":
            return "".join(parts), None, True
    return "".join(parts), None, False


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakePoe:
    return await start_fake_poe(aiohttp_server)


@pytest.fixture
async def session() -> Any:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_script_recording_and_exact_bytes(
    fake: FakePoe, session: aiohttp.ClientSession
) -> None:
    fake.script("GPT-4o", [text("Hel"), text("lo"), done()])
    resp, chunks, err = await fetch(session, f"{fake.base_url}/bot/gpt-4o", query_body("Hi there"))
    assert err is None
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["X-Accel-Buffering"] == "no"
    assert "Content-Encoding" not in resp.headers
    assert b"".join(chunks) == (
        b'event: text\ndata: {"text": "Hel"}\n\n'
        b'event: text\ndata: {"text": "lo"}\n\n'
        b"event: done\ndata: {}\n\n"
    )
    rec = fake.last
    assert isinstance(rec, Received)
    assert fake.requests == [rec]
    assert rec.bot == "gpt-4o"
    assert rec.path == "/bot/gpt-4o"
    assert rec.api_key == KEY
    assert rec.headers["Authorization"] == f"Bearer {KEY}"
    assert rec.body is not None and rec.body["query"][0]["content"] == "Hi there"
    assert json.loads(rec.raw_body) == rec.body
    assert rec.started.is_set() and rec.finished.is_set() and not rec.cancelled.is_set()
    # default script: "basic"; a default can be set with script(None, ...)
    _, chunks, _ = await fetch(session, f"{fake.base_url}/bot/Other")
    assert final_answer(parse_sse(b"".join(chunks)))[0] == "Hello, world!"
    fake.script(None, [text("default"), done()])
    _, chunks, _ = await fetch(session, f"{fake.base_url}/bot/Other")
    assert final_answer(parse_sse(b"".join(chunks)))[0] == "default"


async def test_callable_script_and_line_endings(
    fake: FakePoe, session: aiohttp.ClientSession
) -> None:
    fake.script(
        "echo", lambda rec: [text(rec.query[-1]["content"].upper()), done()], line_ending="\r\n"
    )
    _, chunks, _ = await fetch(session, f"{fake.base_url}/bot/echo", query_body("shout"))
    assert b"".join(chunks) == (
        b'event: text\r\ndata: {"text": "SHOUT"}\r\n\r\nevent: done\r\ndata: {}\r\n\r\n'
    )
    fake.script(
        "misc", [comment(), comment(""), raw(b"xyz"), error("bad", False, "user_caused_error")]
    )
    _, chunks, _ = await fetch(session, f"{fake.base_url}/bot/misc")
    assert b"".join(chunks) == (
        b": ping\n\n:\n\nxyz"
        b'event: error\ndata: {"allow_retry": false, "text": "bad", "error_type": "user_caused_error"}\n\n'
    )
    fake.script("closing", [text("a"), close(), text("never")])
    _, chunks, _ = await fetch(session, f"{fake.base_url}/bot/closing")
    assert b"".join(chunks) == b'event: text\ndata: {"text": "a"}\n\n'
    assert fake.last is not None and fake.last.finished.is_set()
    assert meta().data == {
        "content_type": "text/markdown",
        "suggested_replies": False,
        "linkify": True,
        "refetch_settings": False,
    }


async def test_all_text_scenarios_give_documented_answers(
    fake: FakePoe, session: aiohttp.ClientSession
) -> None:
    for name, expected in ANSWERS.items():
        resp, chunks, err = await fetch(session, f"{fake.base_url}/bot/scenario-{name}")
        assert resp.status == 200, name
        body = b"".join(chunks)
        answer, err_data, saw_done = final_answer(parse_sse(body))
        assert answer == expected, name
        is_error = name.startswith(("error-", "rate-limit", "no-points", "internal-error"))
        if is_error or name in ("access-denied-text", "invalid-token-text", "unknown-bot-text"):
            assert err_data is not None, name
        else:
            assert err_data is None, name
        if name == "reset-mid-event":
            assert err is not None and fake.last is not None and fake.last.was_reset
        else:
            assert err is None, name
        if name in ("close-no-done", "no-trailing-blank-line", "error-first-no-done"):
            assert not saw_done, name
        if name == "huge-line":
            assert max(len(line) for line in body.split(b"\n")) > 200 * 1024
        if name == "media":
            assert MEDIA_URL.encode() in body
    # the non-text scenarios exist too
    for name in ("tools-native", "http-401", "http-529", "stall", "json-200", "http-520-html"):
        assert name in SCENARIOS
    resp, _, _ = await fetch(session, f"{fake.base_url}/bot/scenario-no-such-thing")
    assert resp.status == 404


async def test_split_writes_arrive_in_pieces(fake: FakePoe, session: aiohttp.ClientSession) -> None:
    steps = [text("Hello"), text(", world!"), done()]
    fake.script("split", steps, split=5)
    _, chunks, _ = await fetch(session, f"{fake.base_url}/bot/split")
    full = b"".join(chunks)
    assert final_answer(parse_sse(full))[0] == "Hello, world!"
    assert max(len(c) for c in chunks) <= 5
    assert len(chunks) >= len(full) // 5
    fake.script("bytes", steps, split="bytes")
    _, chunks, _ = await fetch(session, f"{fake.base_url}/bot/bytes")
    assert b"".join(chunks) == full and {len(c) for c in chunks} == {1}
    fake.script("coalesced", steps, coalesce=True)
    _, chunks, _ = await fetch(session, f"{fake.base_url}/bot/coalesced")
    assert chunks == [full]
    fake.script_scenario("r", "split-random")
    _, chunks, _ = await fetch(session, f"{fake.base_url}/bot/r")
    assert len(chunks) > 10 and final_answer(parse_sse(b"".join(chunks)))[0] == "Hello, world!"


async def test_http_errors(fake: FakePoe, session: aiohttp.ClientSession) -> None:
    resp, chunks, _ = await fetch(session, f"{fake.base_url}/bot/scenario-http-429-retry-after")
    assert resp.status == 429 and resp.headers["Retry-After"] == "2"
    assert resp.headers["Content-Type"] == "application/json"
    assert json.loads(b"".join(chunks))["error"]["type"] == "rate_limit_error"
    resp, chunks, _ = await fetch(session, f"{fake.base_url}/bot/scenario-http-520-html")
    assert resp.status == 520 and resp.headers["Content-Type"].startswith("text/html")
    assert b"Error code 520" in b"".join(chunks)
    resp, chunks, _ = await fetch(session, f"{fake.base_url}/bot/scenario-json-200")
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
    fake.script("b", [http_error(503, "busy", "text/plain", {"X-Test": "1"})])
    resp, chunks, _ = await fetch(session, f"{fake.base_url}/bot/b")
    assert (resp.status, b"".join(chunks), resp.headers["X-Test"]) == (503, b"busy", "1")
    assert fake.last is not None and fake.last.status == 503


async def test_auth_validation_and_side_requests(
    fake: FakePoe, session: aiohttp.ClientSession
) -> None:
    url = f"{fake.base_url}/bot/Bot"
    resp, _, _ = await fetch(session, url, headers={})
    assert resp.status == 401
    fake.keys = {KEY}
    resp, chunks, _ = await fetch(session, url, headers=auth("wrong"))
    assert resp.status == 401
    assert json.loads(b"".join(chunks)) == {
        "error": {"message": "Invalid API key", "type": "authentication_error"}
    }
    assert fake.last is not None and fake.last.api_key == "wrong"
    fake.auth_failure = "event"
    resp, chunks, _ = await fetch(session, url, headers=auth("wrong"))
    assert resp.status == 200
    _, err, _ = final_answer(parse_sse(b"".join(chunks)))
    assert err == {"allow_retry": False, "text": "Invalid token"}
    resp, chunks, _ = await fetch(session, url, query_body(role="assistant"))
    assert resp.status == 400
    assert json.loads(b"".join(chunks))["error"] == {
        "message": "Input should be 'system', 'user' or 'bot'",
        "type": "invalid_request_error",
    }
    resp, chunks, _ = await fetch(session, url, query_body(role="tool"))
    assert resp.status == 200
    for kind in ("report_error", "report_feedback", "report_reaction", "settings"):
        resp, chunks, _ = await fetch(
            session, url, {"version": "1.2", "type": kind, "message": "x"}
        )
        assert (resp.status, json.loads(b"".join(chunks))) == (200, {})
        assert fake.last is not None and fake.last.type == kind
    for path in (
        "fetch_settings/Bot/key/1.2",
        "update_settings/Bot/key/1.2",
        "cost/q1/capture",
        "cost",
    ):
        resp, _, _ = await fetch(session, f"{fake.base_url}/bot/{path}")
        assert resp.status == 404, path
    assert len(fake.requests) == 13
    assert len(fake.queries) == 5


async def test_upload_both_forms_and_auth_styles(
    fake: FakePoe, session: aiohttp.ClientSession
) -> None:
    url = f"{fake.base_url}/poe_api/file_upload_3RD_PARTY_POST"
    fake.keys = {KEY}
    form = aiohttp.FormData()
    form.add_field("file", b"\x89PNG fake", filename="cat.png")
    async with session.post(url, data=form, headers={"Authorization": KEY}) as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert answer["mime_type"] == "image/png"
    assert answer["attachment_url"].startswith(f"{fake.base_url}/files/")
    assert answer["attachment_url"].endswith("/cat.png")
    async with session.get(answer["attachment_url"]) as resp:
        assert resp.status == 200 and await resp.read() == b"\x89PNG fake"
        assert resp.content_type == "image/png"
    up = fake.uploads[-1]
    assert (up.kind, up.filename, up.content_type, up.data, up.api_key) == (
        "file",
        "cat.png",
        "image/png",
        b"\x89PNG fake",
        KEY,
    )
    # download_url, urlencoded, Bearer
    data = {"download_url": "https://example.com/a/doc.pdf", "download_filename": "report.pdf"}
    async with session.post(url, data=data, headers=auth()) as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert answer["mime_type"] == "application/pdf" and answer["attachment_url"].endswith(
        "/report.pdf"
    )
    assert (fake.uploads[-1].kind, fake.uploads[-1].url) == ("url", "https://example.com/a/doc.pdf")
    # download_url as multipart, no filename
    form = aiohttp.FormData(
        {"download_url": "https://example.com/x/pic.jpg"}, default_to_multipart=True
    )
    async with session.post(url, data=form, headers=auth()) as resp:
        assert resp.status == 200
        assert (await resp.json())["mime_type"] == "image/jpeg"
    assert fake.uploads[-1].filename == "pic.jpg"
    # failures
    async with session.post(url, data=data, headers={"Authorization": "nope"}) as resp:
        assert resp.status == 401
    fake.upload_failure = (413, "Request Entity Too Large")
    async with session.post(url, data=data, headers=auth()) as resp:
        assert (resp.status, await resp.text()) == (413, "Request Entity Too Large")
    assert len(fake.uploads) == 4


async def test_models_and_balance(fake: FakePoe, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{fake.base_url}/v1/models") as resp:
        assert resp.status == 200
        models = (await resp.json())["data"]
    assert fake.models_hits == 1
    by_id = {m["id"]: m for m in models}
    assert all(m["id"] == m["id"].lower() and m["created"] > 10**12 for m in models)
    assert {"gpt-5.2", "claude-sonnet-4.5", "nano-banana"} <= set(by_id)
    assert any(m["pricing"] is None for m in models)
    params = {p["name"]: p for p in by_id["claude-sonnet-4.5"]["parameters"]}
    assert params["thinking_budget"]["schema"] == {"type": "number", "minimum": 0, "maximum": 31999}
    assert params["web_search"]["schema"] == {"type": "boolean"}
    assert "enum" in by_id["gpt-5.2"]["parameters"][0]["schema"]
    assert by_id["nano-banana"]["parameters"][0]["name"] == "aspect_ratio"
    fake.models_failure = 503
    async with session.get(f"{fake.base_url}/v1/models") as resp:
        assert resp.status == 503
    assert fake.models_hits == 2

    url = f"{fake.base_url}/usage/current_balance"
    async with session.get(url) as resp:
        assert resp.status == 401
    async with session.get(url, headers=auth()) as resp:
        assert await resp.json() == {"current_point_balance": 1000}
    fake.keys = {KEY}
    async with session.get(url, headers=auth("bad")) as resp:
        assert resp.status == 401


async def test_cancelled_when_client_leaves_mid_stream(
    fake: FakePoe, session: aiohttp.ClientSession
) -> None:
    loop = asyncio.get_running_loop()
    async with session.post(
        f"{fake.base_url}/bot/scenario-stall-mid", json=query_body(), headers=auth()
    ) as resp:
        first = await resp.content.readuntil(b"\n\n")
        assert first == b'event: text\ndata: {"text": "Hello"}\n\n'
        rec = fake.last
        assert rec is not None and not rec.cancelled.is_set()
        left_at = loop.time()
        resp.close()
    assert await fake.wait_cancelled(1.0)
    assert rec.cancelled_at is not None and rec.cancelled_at - left_at < 0.5
    assert not rec.finished.is_set()


async def test_hang_before_headers_then_client_timeout(
    fake: FakePoe, session: aiohttp.ClientSession
) -> None:
    fake.script("h", [hang(before_headers=True)])
    with pytest.raises(asyncio.TimeoutError):
        await session.post(
            f"{fake.base_url}/bot/h",
            json=query_body(),
            headers=auth(),
            timeout=aiohttp.ClientTimeout(total=0.2),
        )
    assert fake.last is not None and await fake.last.wait_cancelled(1.0)


async def test_sleep_and_reset(fake: FakePoe, session: aiohttp.ClientSession) -> None:
    fake.script("r", [text("a"), sleep(0.1), raw(b"event: text\ndata: {"), reset(), text("never")])
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    resp, chunks, err = await fetch(session, f"{fake.base_url}/bot/r")
    assert loop.time() - t0 >= 0.1
    assert resp.status == 200
    assert isinstance(err, aiohttp.ClientPayloadError)
    assert b"".join(chunks).startswith(b'event: text\ndata: {"text": "a"}\n\n')
    rec = fake.last
    assert rec is not None and rec.was_reset and not rec.cancelled.is_set()


async def test_tools_native_flow(fake: FakePoe, session: aiohttp.ClientSession) -> None:
    fake.script_scenario("GPT-4o", "tools-native")
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
            },
        }
    ]
    _, chunks, _ = await fetch(session, f"{fake.base_url}/bot/GPT-4o", query_body(tools=tools))
    events = parse_sse(b"".join(chunks))
    assert [name for name, _ in events] == ["json"] * 5 + ["done"]
    chunks_data = [json.loads(p) for _, p in events[:-1]]
    first = chunks_data[0]["choices"][0]["delta"]["tool_calls"][0]
    assert (first["id"], first["function"]["name"]) == ("call_fake_1", "get_weather")
    args = "".join(
        c["choices"][0]["delta"].get("tool_calls", [{}])[0].get("function", {}).get("arguments", "")
        for c in chunks_data
        if c["choices"]
    )
    assert json.loads(args) == {"location": "Paris"}
    assert chunks_data[3]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks_data[4]["choices"] == [] and chunks_data[4]["usage"]["total_tokens"] == 15
    results = [
        {"role": "tool", "name": "get_weather", "tool_call_id": "call_fake_1", "content": "sunny"}
    ]
    _, chunks, _ = await fetch(
        session, f"{fake.base_url}/bot/GPT-4o", query_body(tools=tools, tool_results=results)
    )
    assert final_answer(parse_sse(b"".join(chunks)))[0] == "Tool result: sunny"


async def test_hang_detected_without_handler_cancellation(session: aiohttp.ClientSession) -> None:
    fake = FakePoe()
    fake.script("h", [text("x"), hang()])
    runner = web.AppRunner(fake.make_app(), handler_cancellation=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with session.post(
            f"http://127.0.0.1:{port}/bot/h", json=query_body(), headers=auth()
        ) as resp:
            await resp.content.readuntil(b"\n\n")
            resp.close()
        assert await fake.wait_cancelled(1.0)
    finally:
        await runner.cleanup()


async def test_server_close_does_not_wait_for_hanging_handlers(aiohttp_server: Any) -> None:
    fake = FakePoe()
    fake.script("h", [text("x"), hang()])
    server = await aiohttp_server(fake.make_app())
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as s:
        async with s.post(server.make_url("/bot/h"), json=query_body(), headers=auth()) as resp:
            await resp.content.readuntil(b"\n\n")
            t0 = loop.time()
            await server.close()
            assert loop.time() - t0 < 2.0
    assert fake.last is not None and fake.last.cancelled.is_set()
