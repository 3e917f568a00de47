"""The whole request is checked before any of its files is uploaded.

A data-URL image in a request with a malformed text part elsewhere used to be uploaded to
Poe first and the request refused afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.fake_poe import FakePoe
from tests.hardening import IMAGE
from tests.helpers import AUTH, assert_openai_error


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("messages", "param"), [
    ([{"role": "user", "content": [IMAGE, {"type": "text", "text": 5}]}],
     "messages[0].content[1].text"),
    ([{"role": "user", "content": [{"type": "text", "text": "Look"}, IMAGE]},
      {"role": "user", "content": 7}], "messages[1].content"),
    ([{"role": "user", "content": [IMAGE]},
      {"role": "assistant", "content": [{"type": "refusal", "refusal": None}]},
      {"role": "user", "content": "Well?"}], "messages[1].content[0].refusal"),
    ([{"role": "user", "content": [IMAGE, 5]}], "messages[0].content[1]"),
    ([{"role": "user", "content": [IMAGE]},
      {"role": "tool", "tool_call_id": "x", "content": {"text": "hi"}}], "messages[1].content"),
    ([{"role": "system", "content": [{"type": "text"}]},
      {"role": "user", "content": [IMAGE]}], "messages[0].content[0].text"),
])
async def test_nothing_is_uploaded_for_a_request_that_is_refused(
        proxy: TestClient[Any, Any], fake_poe: FakePoe, messages: list[Any], param: str,
        stream: bool) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json={"model": "GPT-4o", "messages": messages, "stream": stream})
    await assert_openai_error(resp, 400, "invalid_request_error", param=param)
    assert not fake_poe.uploads
    assert not fake_poe.queries


async def test_a_valid_request_with_an_image_is_uploaded_and_sent(
        proxy: TestClient[Any, Any], fake_poe: FakePoe) -> None:
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        "model": "GPT-4o", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Look"}, IMAGE]}]})
    assert resp.status == 200
    assert len(fake_poe.uploads) == 1
    assert fake_poe.last is not None and fake_poe.last.query[-1]["content"] == "Look"
