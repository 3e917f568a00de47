"""HTTPS_PROXY / HTTP_PROXY / NO_PROXY for reaching Poe, resolved once at start."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from poe2openai.poe.client import proxy_for
from tests.fake_poe import FakePoe, done, text
from tests.helpers import AUTH, chat_body


@pytest.mark.parametrize(("url", "env", "expected"), [
    ("https://api.poe.com", {}, None),
    ("https://api.poe.com", {"HTTPS_PROXY": "http://p:3128"}, "http://p:3128"),
    ("https://api.poe.com", {"https_proxy": "http://p:3128"}, "http://p:3128"),
    ("https://api.poe.com", {"HTTP_PROXY": "http://p:3128"}, None),
    ("http://relay.local", {"HTTP_PROXY": "http://p:3128"}, "http://p:3128"),
    ("https://api.poe.com", {"ALL_PROXY": "http://p:1"}, "http://p:1"),
    ("https://api.poe.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "poe.com"}, None),
    ("https://api.poe.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".poe.com"}, None),
    ("https://api.poe.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, None),
    ("https://api.poe.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"},
     "http://p:1"),
    ("https://notpoe.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "poe.com"}, "http://p:1"),
])
def test_proxy_for(url: str, env: dict[str, str], expected: str | None,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert proxy_for(url) == expected


async def test_requests_go_through_the_proxy(make_proxy: Callable[..., Awaitable[TestClient[Any, Any]]],
                                             fake_poe: FakePoe,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake Poe plays the HTTP proxy: Poe's host itself does not exist."""
    fake_poe.script(None, [text("via proxy"), done()])
    monkeypatch.setenv("HTTP_PROXY", fake_poe.base_url)
    proxy = await make_proxy(poe_base_url="http://poe.invalid")
    resp = await proxy.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
    assert (await resp.json())["choices"][0]["message"]["content"] == "via proxy"
    assert fake_poe.last.bot == "GPT-4o"
