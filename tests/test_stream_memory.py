"""What an open stream holds: none of its prompt once the query is sent, on every face.

Measured with tracemalloc, counting only memory allocated by poe2openai's own code (the
in-process fake Poe keeps the query it received, and the test client its request)."""

from __future__ import annotations

import asyncio
import gc
import io
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

import poe2openai
from tests.fake_poe import FakePoe, done, text, wait
from tests.helpers import AUTH

PROMPT = 2_000_000  # characters: far above everything else a stream holds
_SRC = str(Path(poe2openai.__file__).parent / "*")


def _bodies(prompt: str) -> dict[str, tuple[str, dict[str, Any]]]:
    messages = [{"role": "user", "content": prompt}]
    return {
        "chat": ("/v1/chat/completions", {"model": "Slow", "messages": messages,
                                          "stream": True}),
        "chat-usage": ("/v1/chat/completions", {
            "model": "Slow", "messages": messages, "stream": True,
            "stream_options": {"include_usage": True}}),
        "responses": ("/v1/responses", {"model": "Slow", "input": prompt, "stream": True,
                                        "store": False}),
        "messages": ("/v1/messages", {"model": "Slow", "messages": messages, "stream": True,
                                      "max_tokens": 100}),
    }


def _held_by_proxy() -> int:
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, _SRC)])
    return sum(stat.size for stat in snapshot.statistics("filename"))


@pytest.mark.parametrize("face", ["chat", "chat-usage", "responses", "messages"])
async def test_an_open_stream_holds_none_of_its_prompt(proxy: TestClient[Any, Any],
                                                       fake_poe: FakePoe, face: str) -> None:
    gate = asyncio.Event()
    fake_poe.script("Slow", [text("Hello"), wait(gate), text(" world"), done()])
    path, body = _bodies("x" * PROMPT)[face]
    data = orjson.dumps(body)
    del body
    tracemalloc.start()
    try:
        resp = await proxy.post(path, data=io.BytesIO(data), headers={**AUTH,
                                                          "Content-Type": "application/json"})
        assert resp.status == 200
        first = await resp.content.readany()
        assert b"Hello" in first or await resp.content.readany()
        assert fake_poe.last is not None and len(str(fake_poe.last.query)) > PROMPT
        # The prompt's tokens may still be being counted in a worker thread (the first
        # count loads the tokenizer): that holds the query until it is done, not the stream.
        for _ in range(50):
            held = _held_by_proxy()
            if held < PROMPT // 4:
                break
            await asyncio.sleep(0.1)
        gate.set()
        rest = await resp.read()
    finally:
        tracemalloc.stop()
    assert b"world" in rest
    assert held < PROMPT // 4, f"{face}: an open stream holds {held} bytes"
