"""Every failure becomes an OpenAI error envelope with the right status."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import openai
import pytest
from aiohttp.test_utils import TestClient

from tests.fake_poe import FakePoe, comment, done, hang, ping, sleep, text
from tests.helpers import AUTH, assert_openai_error, chat_body, parse_sse, stream_text

Proxy = TestClient[Any, Any]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer "}, {"Authorization": "Bearer"}])
async def test_missing_or_malformed_key(proxy: Proxy, fake_poe: FakePoe,
                                        headers: dict[str, str]) -> None:
    resp = await proxy.post("/v1/chat/completions", json=chat_body(), headers=headers)
    await assert_openai_error(resp, 401, "invalid_request_error", "invalid_api_key", None)
    assert fake_poe.requests == []


@pytest.mark.parametrize(("data", "param"), [
    (b"{not json", None), (b"", None), (b"[1, 2]", None), (b'{"messages": []}', "model"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}', "n"),
    (b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "hologram"}]}]}',
     "messages[0].content[0].type"),
])
async def test_bad_bodies(proxy: Proxy, fake_poe: FakePoe, data: bytes, param: str | None) -> None:
    resp = await proxy.post("/v1/chat/completions", data=data,
                            headers={**AUTH, "Content-Type": "application/json"})
    await assert_openai_error(resp, 400, "invalid_request_error", param=param)
    assert fake_poe.requests == []


async def test_body_over_max_request_size(make_proxy: Callable[..., Awaitable[Proxy]]) -> None:
    proxy = await make_proxy(max_request_size=2048)
    resp = await proxy.post("/v1/chat/completions", json=chat_body("x" * 4000), headers=AUTH)
    err = await assert_openai_error(resp, 413, "invalid_request_error", "request_too_large")
    assert "2048" in err["message"]


async def test_unknown_route_and_wrong_method(proxy: Proxy) -> None:
    await assert_openai_error(await proxy.get("/v1/embeddingz"), 404, code="not_found")
    resp = await proxy.get("/v1/chat/completions")
    await assert_openai_error(resp, 405, code="method_not_allowed")
    assert "POST" in resp.headers["Allow"]


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PUT", "/v1/models", "GET, HEAD, OPTIONS"),
    ("PATCH", "/v1/responses/resp_1", None),
    ("POST", "/healthz", "GET, HEAD"),
    ("DELETE", "/metrics", "GET, HEAD"),
    ("GET", "/v1/images/generations/", "OPTIONS, POST"),
])
async def test_every_route_refuses_other_methods_in_the_envelope(
        proxy: Proxy, method: str, path: str, allowed: str | None) -> None:
    resp = await proxy.request(method, path)
    err = await assert_openai_error(resp, 405, code="method_not_allowed")
    assert method in err["message"] and path in err["message"]
    if allowed is not None:
        assert resp.headers["Allow"] == allowed
    else:
        assert set(resp.headers["Allow"].split(", ")) == {"GET", "HEAD", "DELETE", "OPTIONS"}


@pytest.mark.parametrize("path", ["/v2/chat/completions", "/", "/v1/", "/healthz/x",
                                  "/administrator", "/v1/models/", "/v1/x%0Ay", "/v1/%00"])
async def test_unknown_paths_get_404_in_the_envelope(proxy: Proxy, path: str) -> None:
    resp = await proxy.post(path, json={})
    if path in ("/", "/v1/models/"):  # known paths, other method
        await assert_openai_error(resp, 405, code="method_not_allowed")
        return
    err = await assert_openai_error(resp, 404, code="not_found")
    assert unquote(path) in err["message"]  # decoded: a line break, a NUL, as JSON escapes


async def test_unknown_messages_method_uses_anthropic_envelope(proxy: Proxy) -> None:
    resp = await proxy.get("/v1/messages", headers={"anthropic-version": "2023-06-01"})
    body = await resp.json()
    assert resp.status == 405 and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "GET" in body["error"]["message"]


def test_no_app_in_the_tree_has_middlewares(proxy: Proxy) -> None:
    """aiohttp runs one more coroutine around every request of the tree once any app in it
    has a middleware, and every open stream would hold it (see api/guard.py)."""
    apps = [proxy.app] + [r.get_info()["app"] for r in proxy.app.router.resources()
                          if "app" in r.get_info()]
    assert len(apps) == 2  # the API and /admin
    assert [list(app.middlewares) for app in apps] == [[], []]


# (scenario, status, type, code, x-should-retry)
POE_FAILURES = [
    ("error-first", 502, "server_error", "upstream_error", "true"),
    ("error-first-no-done", 502, "server_error", "upstream_error", "true"),
    ("internal-error-id", 502, "server_error", "upstream_error", "true"),
    ("rate-limit-text", 429, "requests", "rate_limit_exceeded", None),
    ("no-points-text", 429, "insufficient_quota", "insufficient_quota", "false"),
    ("no-points-text-alt", 429, "insufficient_quota", "insufficient_quota", "false"),
    ("access-denied-text", 401, "invalid_request_error", "invalid_api_key", "false"),
    ("invalid-token-text", 401, "invalid_request_error", "invalid_api_key", "false"),
    ("unknown-bot-text", 404, "invalid_request_error", "model_not_found", "false"),
    ("error-no-retry-user_message_too_long", 400, "invalid_request_error",
     "context_length_exceeded", "false"),
    ("error-no-retry-insufficient_fund", 429, "insufficient_quota", "insufficient_quota", "false"),
    ("error-no-retry-user_caused_error", 400, "invalid_request_error", None, "false"),
    ("error-no-retry-privacy_authorization_error", 403, "invalid_request_error", None, "false"),
    ("http-400", 400, "invalid_request_error", None, None),
    ("http-401", 401, "invalid_request_error", "invalid_api_key", "false"),
    ("http-402", 429, "insufficient_quota", "insufficient_quota", "false"),
    ("http-403", 400, "invalid_request_error", "content_filter", "false"),
    ("http-404", 404, "invalid_request_error", "model_not_found", "false"),
    ("http-408", 504, "server_error", "timeout", None),
    ("http-413", 400, "invalid_request_error", "context_length_exceeded", "false"),
    ("http-429", 429, "requests", "rate_limit_exceeded", None),
    ("http-500", 502, "server_error", "upstream_error", None),
    ("http-502", 502, "server_error", "upstream_error", None),
    ("http-503", 503, "server_error", "upstream_unavailable", None),
    ("http-504", 504, "server_error", "timeout", None),
    ("http-529", 503, "server_error", "upstream_unavailable", None),
    ("http-500-text", 502, "server_error", "upstream_error", None),
    ("http-520-html", 502, "server_error", "upstream_error", None),
    ("http-524-html", 504, "server_error", "timeout", None),
    ("json-200", 502, "server_error", "upstream_error", None),
]


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
@pytest.mark.parametrize(("scenario", "status", "type_", "code", "retry"), POE_FAILURES)
async def test_poe_failures_before_first_byte(proxy: Proxy, scenario: str, status: int,
                                              type_: str, code: str | None, retry: str | None,
                                              stream: bool) -> None:
    resp = await proxy.post("/v1/chat/completions",
                            json=chat_body(model=f"scenario-{scenario}", stream=stream),
                            headers=AUTH)
    err = await assert_openai_error(resp, status, type_, code)
    assert resp.headers.get("x-should-retry") == retry
    assert "<" not in err["message"]  # no HTML pages passed through


async def test_retry_after_is_passed_on(proxy: Proxy) -> None:
    resp = await proxy.post("/v1/chat/completions",
                            json=chat_body(model="scenario-http-429-retry-after"), headers=AUTH)
    await assert_openai_error(resp, 429, code="rate_limit_exceeded")
    assert resp.headers["retry-after"] == "2"


async def test_sdk_raises_the_mapped_errors(sdk: openai.AsyncOpenAI) -> None:
    msgs: Any = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.RateLimitError) as info:
        await sdk.chat.completions.create(model="scenario-no-points-text", messages=msgs)
    assert info.value.code == "insufficient_quota"
    with pytest.raises(openai.AuthenticationError):
        await sdk.chat.completions.create(model="scenario-invalid-token-text", messages=msgs)
    with pytest.raises(openai.NotFoundError):
        await sdk.chat.completions.create(model="scenario-unknown-bot-text", messages=msgs,
                                          stream=True)
    with pytest.raises(openai.InternalServerError):
        await sdk.chat.completions.create(model="scenario-error-first", messages=msgs)


@pytest.mark.parametrize("scenario", ["error-mid", "error-mid-no-done", "reset-mid-event"])
async def test_error_after_streaming_started(proxy: Proxy, scenario: str) -> None:
    resp = await proxy.post("/v1/chat/completions",
                            json=chat_body(model=f"scenario-{scenario}", stream=True),
                            headers=AUTH)
    assert resp.status == 200
    payloads = parse_sse(await resp.read())
    assert payloads[-1] == "[DONE]"
    error = payloads[-2]
    assert set(error) == {"error"} and set(error["error"]) == {"message", "type", "param", "code"}
    assert error["error"]["code"] == "upstream_error"
    assert stream_text(payloads[:-2]) in ("Partial answer", "Hello, ")
    assert all(p["choices"][0]["finish_reason"] is None for p in payloads[:-2])


@pytest.mark.parametrize("scenario", ["error-mid", "reset-mid-event"])
async def test_error_mid_answer_non_stream(proxy: Proxy, scenario: str) -> None:
    resp = await proxy.post("/v1/chat/completions", json=chat_body(model=f"scenario-{scenario}"),
                            headers=AUTH)
    await assert_openai_error(resp, 502, "server_error", "upstream_error")


async def test_sdk_raises_mid_stream_error(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="scenario-error-mid", messages=[{"role": "user", "content": "Hi"}], stream=True)
    got = []
    with pytest.raises(openai.APIError, match="Internal server error"):
        async for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "Partial answer"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("stream", [False, True])
async def test_poe_unreachable(make_proxy: Callable[..., Awaitable[Proxy]], stream: bool) -> None:
    proxy = await make_proxy(poe_base_url=f"http://127.0.0.1:{_closed_port()}")
    resp = await proxy.post("/v1/chat/completions", json=chat_body(stream=stream), headers=AUTH)
    err = await assert_openai_error(resp, 502, "server_error", "upstream_error")
    assert err["message"] == "Cannot reach Poe: connection failed"  # no hosts or addresses


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("scenario", ["stall-before-headers", "stall"])
async def test_poe_silent_before_answering(make_proxy: Callable[..., Awaitable[Proxy]],
                                           scenario: str, stream: bool) -> None:
    proxy = await make_proxy(read_timeout=1.0, first_byte_wait=5.0)
    resp = await proxy.post("/v1/chat/completions",
                            json=chat_body(model=f"scenario-{scenario}", stream=stream),
                            headers=AUTH)
    await assert_openai_error(resp, 504, "server_error", "timeout")


async def test_poe_silent_mid_stream(make_proxy: Callable[..., Awaitable[Proxy]]) -> None:
    proxy = await make_proxy(read_timeout=0.5)
    resp = await proxy.post("/v1/chat/completions",
                            json=chat_body(model="scenario-stall-mid", stream=True), headers=AUTH)
    payloads = parse_sse(await resp.read())
    assert stream_text(payloads) == "Hello"
    assert payloads[-2]["error"]["code"] == "timeout" and payloads[-1] == "[DONE]"


async def test_late_error_after_first_byte_wait_is_an_error_chunk(
        make_proxy: Callable[..., Awaitable[Proxy]], fake_poe: FakePoe) -> None:
    from tests.fake_poe import error

    fake_poe.script(None, [sleep(0.5), error("Internal server error"), done()])
    proxy = await make_proxy(first_byte_wait=0.1, keepalive_interval=0.1)
    resp = await proxy.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
    assert resp.status == 200
    raw = await resp.read()
    assert b": keep-alive\n\n" in raw
    payloads = parse_sse(raw)
    assert payloads[0]["choices"][0]["delta"]["role"] == "assistant"
    assert payloads[-2]["error"]["code"] == "upstream_error" and payloads[-1] == "[DONE]"


async def test_keepalive_comments_while_poe_thinks(make_proxy: Callable[..., Awaitable[Proxy]],
                                                   fake_poe: FakePoe) -> None:
    fake_poe.script(None, [text("a"), sleep(0.6), text("b"), done()])
    proxy = await make_proxy(keepalive_interval=0.1)
    resp = await proxy.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
    raw = await resp.read()
    assert raw.count(b": keep-alive\n\n") >= 2
    assert stream_text(parse_sse(raw)) == "ab"


async def test_server_keeps_going_after_errors(proxy: Proxy, fake_poe: FakePoe) -> None:
    for model in ("scenario-error-first", "scenario-http-500", "scenario-reset-mid-event"):
        await proxy.post("/v1/chat/completions", json=chat_body(model=model), headers=AUTH)
    fake_poe.script("GPT-4o", [text("still here"), done()])
    resp = await proxy.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    assert (await resp.json())["choices"][0]["message"]["content"] == "still here"


async def test_hung_poe_does_not_block_other_requests(proxy: Proxy, fake_poe: FakePoe) -> None:
    import asyncio

    fake_poe.script("slow", [hang()])
    fake_poe.script("fast", [text("quick"), done()])
    slow = asyncio.create_task(proxy.post("/v1/chat/completions", json=chat_body(model="slow"),
                                          headers=AUTH))
    resp = await proxy.post("/v1/chat/completions", json=chat_body(model="fast"), headers=AUTH)
    assert (await resp.json())["choices"][0]["message"]["content"] == "quick"
    slow.cancel()


@pytest.mark.parametrize("model", ["..", "."])
async def test_model_names_that_would_leave_the_bot_path(proxy: Proxy, fake_poe: FakePoe,
                                                        model: str) -> None:
    resp = await proxy.post("/v1/chat/completions", json=chat_body(model=model), headers=AUTH)
    await assert_openai_error(resp, 400, "invalid_request_error", param="model")
    assert fake_poe.requests == []


@pytest.mark.parametrize("stream", [False, True])
async def test_poe_pings_are_not_silence(make_proxy: Callable[..., Awaitable[Proxy]],
                                         fake_poe: FakePoe, stream: bool) -> None:
    """POE_READ_TIMEOUT limits silence, not the whole answer: pings and comments that keep
    coming (a bot that thinks for longer than the limit) keep the answer alive."""

    steps: list[Any] = [text("Hel")]
    for i in range(8):  # 1.6 s of keep-alives, each 0.2 s apart, with a limit of 0.6 s
        steps += [sleep(0.2), ping() if i % 2 else comment()]
    fake_poe.script(None, [*steps, text("lo"), done()])
    proxy = await make_proxy(read_timeout=0.6, first_byte_wait=5.0)
    resp = await proxy.post("/v1/chat/completions", json=chat_body(stream=stream),
                            headers=AUTH)
    assert resp.status == 200
    if stream:
        payloads = parse_sse(await resp.read())
        assert stream_text(payloads) == "Hello" and payloads[-1] == "[DONE]"
        assert not any(isinstance(p, dict) and "error" in p for p in payloads)
    else:
        assert (await resp.json())["choices"][0]["message"]["content"] == "Hello"


async def test_poe_silent_mid_answer_not_streamed(
        make_proxy: Callable[..., Awaitable[Proxy]], fake_poe: FakePoe) -> None:
    fake_poe.script(None, [text("Hel"), sleep(30), text("lo"), done()])
    proxy = await make_proxy(read_timeout=0.5)
    resp = await proxy.post("/v1/chat/completions", json=chat_body(stream=False), headers=AUTH)
    await assert_openai_error(resp, 504, "server_error", "timeout")


@pytest.mark.parametrize("head", [
    b"Content-Type: application/json\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n",
    b"Content-Length: abc\r\n",
    b"Bad Header: x\r\nContent-Length: 2\r\n",
])
async def test_malformed_http_is_one_info_line(proxy: Proxy, head: bytes,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """A request aiohttp cannot parse gets its 400, logged as one INFO line, not an ERROR
    with a traceback (anyone could fill the log with those); the server goes on."""
    caplog.set_level(logging.INFO)
    assert proxy.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.server.port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n{}")
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert b" 400 " in status_line
    for _ in range(100):
        if any("malformed" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.01)
    server = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert server and all(r.levelno == logging.INFO and r.exc_info is None for r in server), \
        [(r.levelname, r.getMessage()) for r in server]
    assert "Traceback" not in caplog.text
    assert (await proxy.get("/healthz")).status == 200
