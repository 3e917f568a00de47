"""Helpers of the request-hardening tests (example tests and the fuzz tests)."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.helpers import AUTH, chat_body

PNG_URL = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
IMAGE: dict[str, Any] = {"type": "image_url", "image_url": {"url": PNG_URL}}


def nested(depth: int) -> Any:
    """An object nested ``depth`` levels deep: ``{"a": {"a": … {}}}``."""
    value: Any = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def sendable(value: str) -> bool:
    """Visible ASCII and spaces only: what every HTTP client accepts in a header value."""
    return all(" " <= c <= "~" for c in value)


def assert_headers_sendable(resp: ClientResponse) -> None:
    for name, value in resp.raw_headers:
        assert all(0x20 <= b < 0x7F for b in name + value), (name, value)


async def still_answers(proxy: TestClient[Any, Any]) -> None:
    """The same keep-alive connection still carries a normal request."""
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=chat_body())
    assert resp.status == 200
    assert (await resp.json())["choices"][0]["message"]["content"] == "Hello, world!"
