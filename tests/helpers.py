"""Assertions shared by the tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientResponse

AUTH = {"Authorization": "Bearer test-key"}


def chat_body(content: str = "Hi", *, model: str = "GPT-4o", stream: bool = False,
              **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}],
            "stream": stream, **extra}


async def assert_openai_error(resp: ClientResponse, status: int, type_: str | None = None,
                              code: str | None = None, param: Any = ...) -> dict[str, Any]:
    """The response is an OpenAI error envelope with this status (and type/code/param)."""
    body = await resp.json(content_type=None)
    assert resp.status == status, (resp.status, body)
    assert resp.content_type == "application/json"
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"]
    if type_ is not None:
        assert err["type"] == type_, err
    if code is not None:
        assert err["code"] == code, err
    if param is not ...:
        assert err["param"] == param, err
    return err


def parse_sse(raw: bytes) -> list[Any]:
    """The ``data:`` payloads of an SSE body, JSON-decoded (``"[DONE]"`` kept as a string).

    Also checks the framing: LF line endings, frames separated by a blank line,
    no ``event:`` fields, comments allowed.
    """
    text = raw.decode()
    assert "\r" not in text
    assert text.endswith("\n\n")
    out: list[Any] = []
    for frame in text.split("\n\n")[:-1]:
        lines = [ln for ln in frame.split("\n") if not ln.startswith(":")]
        if not lines:
            continue
        assert len(lines) == 1 and lines[0].startswith("data: "), frame
        payload = lines[0][6:]
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def stream_text(payloads: list[Any], field: str = "content") -> str:
    return "".join(
        p["choices"][0]["delta"].get(field) or ""
        for p in payloads if isinstance(p, dict) and p.get("choices")
    )


async def wait_until(check: Callable[[], Awaitable[bool]], limit: float = 15.0) -> bool:
    """Whether ``check`` came true within ``limit`` seconds (polled every 50 ms)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not await check():
        if loop.time() > end:
            return False
        await asyncio.sleep(0.05)
    return True
