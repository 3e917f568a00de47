"""Response headers built from request data are always sendable.

A parameter name is the client's choice; with a control character in it (``{"x\\ny": 1}``)
it used to go as it was into ``x-dropped-params``, which aiohttp refuses to send: the
connection closed without an answer (after Poe had answered), or, on a stream, a 500 went
out with a broken framing that spoiled the next response on the connection.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from aiohttp.test_utils import TestClient

from tests.fake_poe import FakePoe
from tests.hardening import assert_headers_sendable, sendable, still_answers
from tests.helpers import AUTH, chat_body, parse_sse, stream_text


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("model", "extra", "listed"), [
    ("GPT-4o", {"x\ny": 1, "top_p": 0.5}, ["top_p", "x\ny"]),
    ("GPT-4o", {"a,b": 1, "c\r\nSet-Cookie: x=1": 2, "é": 3, "100%": 4},
     ["100%", "a,b", "c\r\nSet-Cookie: x=1", "é"]),
    ("Claude-Sonnet-4.5", {"extra_body": {"x\ny": 1, "\x00": 2}},
     ["extra_body.\x00", "extra_body.x\ny"]),
])
async def test_dropped_names_with_odd_characters_are_sent_percent_encoded(
        proxy: TestClient[Any, Any], fake_poe: FakePoe, stream: bool, model: str,
        extra: dict[str, Any], listed: list[str]) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json=chat_body(model=model, stream=stream, **extra))
    assert resp.status == 200
    raw = await resp.read()
    if stream:
        assert stream_text(parse_sse(raw)) == "Hello, world!"
    assert_headers_sendable(resp)
    header = resp.headers["x-dropped-params"]
    assert sendable(header), header
    names = header.split(", ")
    assert all("," not in n and " " not in n for n in names)
    assert [unquote(n) for n in names] == listed
    assert len(fake_poe.queries) == 1
    await still_answers(proxy)


async def test_many_dropped_names_make_a_bounded_header(proxy: TestClient[Any, Any]) -> None:
    extra = {f"unknown_parameter_{i:05d}": i for i in range(3000)}
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=chat_body(**extra))
    assert resp.status == 200
    assert_headers_sendable(resp)
    header = resp.headers["x-dropped-params"]
    assert len(header) <= 4096
    names = header.split(", ")
    assert names[0] == "unknown_parameter_00000"
    assert names[-1] == f"+{3000 - len(names) + 1} more"
    await still_answers(proxy)
