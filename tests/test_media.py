"""Files produced by media bots, through the proxy, in stream and non-stream mode."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient

from tests.fake_poe import (
    MEDIA_URL,
    PDF_URL,
    FakePoe,
    close,
    done,
    file_event,
    replace,
    sleep,
    text,
)
from tests.helpers import AUTH, chat_body, parse_sse, stream_text


async def answer(sdk: openai.AsyncOpenAI, stream: bool, model: str = "GPT-4o") -> str:
    messages: list[Any] = [{"role": "user", "content": "Draw a cat"}]
    if not stream:
        reply = await sdk.chat.completions.create(model=model, messages=messages)
        return reply.choices[0].message.content or ""
    chunks = [c async for c in await sdk.chat.completions.create(
        model=model, messages=messages, stream=True)]
    assert chunks[-1].choices[0].finish_reason == "stop"
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("stream", [False, True])
async def test_media_scenario_ref_rewritten(sdk: openai.AsyncOpenAI, fake_poe: FakePoe,
                                            stream: bool) -> None:
    assert await answer(sdk, stream, "scenario-media") == \
        f"Here is a cat:\n\n![cat.png]({MEDIA_URL})"


@pytest.mark.parametrize("stream", [False, True])
async def test_media_no_ref_appended(sdk: openai.AsyncOpenAI, fake_poe: FakePoe,
                                     stream: bool) -> None:
    assert await answer(sdk, stream, "scenario-media-no-ref") == \
        f"Your file is ready.\n\n[report.pdf]({PDF_URL})"


async def test_media_replace_non_stream(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    assert await answer(sdk, False, "scenario-media-replace") == f"![cat.png]({MEDIA_URL})"


async def test_media_replace_stream(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    # The placeholder was already streamed and cannot be taken back; the image follows it.
    assert await answer(sdk, True, "scenario-media-replace") == \
        f"Generating image...\n\n![cat.png]({MEDIA_URL})"


@pytest.mark.parametrize("stream", [False, True])
async def test_image_bot_with_only_replace_response(sdk: openai.AsyncOpenAI, fake_poe: FakePoe,
                                                    stream: bool) -> None:
    """B25: a trailing replace_response (no text after it) still reaches stream clients."""
    fake_poe.script("GPT-4o", [
        replace("Generating..."),
        file_event(MEDIA_URL, "out.png", "image/png", inline_ref="img"),
        replace("![A cat][img]"),
        done(),
    ])
    assert await answer(sdk, stream) == f"![A cat]({MEDIA_URL})"


@pytest.mark.parametrize("split", [None, "bytes", "random"])
@pytest.mark.parametrize("stream", [False, True])
async def test_reference_split_across_text_events(sdk: openai.AsyncOpenAI, fake_poe: FakePoe,
                                                  stream: bool, split: str | None) -> None:
    fake_poe.script("GPT-4o", [
        file_event(MEDIA_URL, "cat.png", "image/png", inline_ref="ref_a"),
        file_event(PDF_URL, "report.pdf", "application/pdf", inline_ref="ref_b"),
        text("Cat: !["), text("a cat]"), text("[ref"), text("_a] and the "),
        text("[report][ref_b"), text("]."), done(),
    ], split=split)
    assert await answer(sdk, stream) == \
        f"Cat: ![a cat]({MEDIA_URL}) and the [report]({PDF_URL})."


@pytest.mark.parametrize("stream", [False, True])
async def test_unused_ref_and_no_ref_files_listed_at_the_end(
        sdk: openai.AsyncOpenAI, fake_poe: FakePoe, stream: bool) -> None:
    fake_poe.script("GPT-4o", [
        file_event(MEDIA_URL, "cat.png", "image/png", inline_ref="never_used"),
        file_event(PDF_URL, "report.pdf", "application/pdf"),
        text("Done [see below]"), done(),
    ])
    assert await answer(sdk, stream) == \
        f"Done [see below]\n\n![cat.png]({MEDIA_URL})\n\n[report.pdf]({PDF_URL})"


async def test_stream_does_not_hold_text_without_files(proxy: TestClient[Any, Any],
                                                       fake_poe: FakePoe) -> None:
    """Without a file event nothing is held back: each text event is its own chunk."""
    fake_poe.script("GPT-4o", [text("a [b"), sleep(0.02), text("][c"), sleep(0.02), text("]"),
                               done()])
    resp = await proxy.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
    payloads = parse_sse(await resp.read())
    contents = [p["choices"][0]["delta"].get("content") for p in payloads
                if isinstance(p, dict) and p.get("choices")]
    assert [c for c in contents if c] == ["a [b", "][c", "]"]
    assert stream_text(payloads) == "a [b][c]"


async def test_stream_held_fragment_released_with_next_text(proxy: TestClient[Any, Any],
                                                            fake_poe: FakePoe) -> None:
    fake_poe.script("GPT-4o", [file_event(MEDIA_URL, "c.png", "image/png", inline_ref="r"),
                               text("x !["), sleep(0.02), text("t][r] y"), done()])
    resp = await proxy.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
    payloads = parse_sse(await resp.read())
    contents = [p["choices"][0]["delta"].get("content") for p in payloads
                if isinstance(p, dict) and p.get("choices")]
    assert [c for c in contents if c] == ["x ", f"![t]({MEDIA_URL}) y"]


@pytest.mark.parametrize("stream", [False, True])
async def test_close_without_done_still_gives_the_media(sdk: openai.AsyncOpenAI,
                                                        fake_poe: FakePoe, stream: bool) -> None:
    fake_poe.script("GPT-4o", [file_event(MEDIA_URL, "cat.png", "image/png", inline_ref="r"),
                               replace("![cat][r]"), close()])
    assert await answer(sdk, stream) == f"![cat]({MEDIA_URL})"
