"""Image and file input through the proxy: uploads to the fake Poe, the cache, errors."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpServer

from poe2openai.attachments import MAX_CONCURRENT
from poe2openai.upload_cache import FILE_NAME, user_hash
from tests.fake_poe import FakePoe, done, text
from tests.helpers import AUTH, assert_openai_error, parse_sse, stream_text

MakeProxy = Callable[..., Awaitable[TestClient[Any, Any]]]

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(300)
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
PDF = b"%PDF-1.4\n" + os.urandom(200)
PDF_DATA = "data:application/pdf;base64," + base64.b64encode(PDF).decode()
CDN = "https://pfst.cf2.poecdn.net/base/image/abc.png"


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, "detail": "auto"}}


def pdf(name: str = "report.pdf", data: str = PDF_DATA) -> dict[str, Any]:
    return {"type": "file", "file": {"filename": name, "file_data": data}}


def body(*parts: dict[str, Any], stream: bool = False,
         history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"model": "GPT-4o", "stream": stream, "messages": [
        *(history or []), {"role": "user", "content": [{"type": "text", "text": "Look"}, *parts]}]}


@pytest.fixture
async def recorder(aiohttp_server: AiohttpServer) -> tuple[str, list[str]]:
    """A loopback site that records every request made to it."""
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=PNG, content_type="image/png")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = await aiohttp_server(app)
    return str(server.make_url("/pics/cat.png")), hits


async def test_sdk_image_and_pdf_reach_poe_as_attachments_uploaded_once(
        sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    fake_poe.script("GPT-4o", [text("A cat."), done()])
    history: list[dict[str, Any]] = []
    for turn in range(3):
        # A conversation: every request carries the whole history, images included.
        user = {"role": "user", "content": [{"type": "text", "text": f"turn {turn}"},
                                            image(PNG_URL), pdf()]}
        reply = await sdk.chat.completions.create(model="GPT-4o", messages=[*history, user])
        assert reply.choices[0].message.content == "A cat."
        history += [user, {"role": "assistant", "content": "A cat."}]

        query = fake_poe.last.query
        users = [m for m in query if m["role"] == "user"]
        assert len(users) == turn + 1
        for msg in users:
            assert msg["content"].startswith("turn ")
            assert [(a["content_type"], a["name"]) for a in msg["attachments"]] == [
                ("image/png", "image.png"), ("application/pdf", "report.pdf")]
        assert all("attachments" not in m for m in query if m["role"] == "bot")

    # The two uploads run concurrently: their order at Poe is not fixed.
    uploads = sorted(fake_poe.uploads, key=lambda u: u.filename)
    assert [(u.kind, u.filename, u.content_type, u.data, u.api_key) for u in uploads] == [
        ("file", "image.png", "image/png", PNG, "test-key"),
        ("file", "report.pdf", "application/pdf", PDF, "test-key"),
    ]
    by_name = {u.filename: u.attachment_url for u in uploads}
    att = fake_poe.last.query[0]["attachments"]
    assert [a["url"] for a in att] == [by_name["image.png"], by_name["report.pdf"]]


async def test_stream_request_with_image(proxy: TestClient[Any, Any], fake_poe: FakePoe) -> None:
    fake_poe.script("GPT-4o", [text("Seen."), done()])
    resp = await proxy.post("/v1/chat/completions", json=body(image(PNG_URL), stream=True),
                            headers=AUTH)
    assert resp.status == 200
    assert stream_text(parse_sse(await resp.read())) == "Seen."
    [up] = fake_poe.uploads
    assert fake_poe.last.query[-1]["attachments"] == [
        {"url": up.attachment_url, "content_type": "image/png", "name": "image.png"}]


async def test_same_image_twice_in_one_request_uploads_once(
        proxy: TestClient[Any, Any], fake_poe: FakePoe) -> None:
    resp = await proxy.post("/v1/chat/completions", json=body(image(PNG_URL), image(PNG_URL)),
                            headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert len(fake_poe.uploads) == 1
    urls = [a["url"] for a in fake_poe.last.query[-1]["attachments"]]
    assert urls == [fake_poe.uploads[0].attachment_url] * 2


async def test_large_image_decoded_intact(proxy: TestClient[Any, Any], fake_poe: FakePoe) -> None:
    big = os.urandom(300_000)
    url = "data:image/jpeg;base64," + base64.urlsafe_b64encode(big).decode()
    resp = await proxy.post("/v1/chat/completions", json=body(image(url)), headers=AUTH)
    assert resp.status == 200, await resp.text()
    [up] = fake_poe.uploads
    assert up.data == big and up.filename == "image.jpg"


async def test_cache_survives_restart(make_proxy: MakeProxy, fake_poe: FakePoe,
                                      tmp_path: Path) -> None:
    first = await make_proxy()
    assert not (tmp_path / FILE_NAME).exists()  # created only by the first upload
    resp = await first.post("/v1/chat/completions", json=body(image(PNG_URL)), headers=AUTH)
    assert resp.status == 200
    assert (tmp_path / FILE_NAME).exists()
    await first.close()

    second = await make_proxy()
    resp = await second.post("/v1/chat/completions", json=body(image(PNG_URL)), headers=AUTH)
    assert resp.status == 200
    assert len(fake_poe.uploads) == 1
    assert fake_poe.last.query[-1]["attachments"][0]["url"] == fake_poe.uploads[0].attachment_url
    # Nothing secret on disk: neither the API key nor its hash is in the files.
    raw = await asyncio.to_thread(_cache_bytes, tmp_path)
    assert b"test-key" not in raw and user_hash("test-key").encode() not in raw


def _cache_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.glob(FILE_NAME + "*"))


async def test_uploads_are_not_shared_between_api_keys(
        proxy: TestClient[Any, Any], fake_poe: FakePoe) -> None:
    for key in ("key-alice", "key-bob", "key-alice"):
        resp = await proxy.post("/v1/chat/completions", json=body(image(PNG_URL)),
                                headers={"Authorization": f"Bearer {key}"})
        assert resp.status == 200
    assert [u.api_key for u in fake_poe.uploads] == ["key-alice", "key-bob"]
    bob_url = fake_poe.uploads[1].attachment_url
    assert fake_poe.requests[1].query[-1]["attachments"][0]["url"] == bob_url
    assert fake_poe.requests[2].query[-1]["attachments"][0]["url"] != bob_url


async def test_remote_url_is_fetched_by_poe_never_by_the_proxy(
        proxy: TestClient[Any, Any], fake_poe: FakePoe,
        recorder: tuple[str, list[str]]) -> None:
    url, hits = recorder
    for _ in range(2):
        resp = await proxy.post("/v1/chat/completions",
                                json=body({"type": "image_url", "image_url": url}), headers=AUTH)
        assert resp.status == 200, await resp.text()
    [up] = fake_poe.uploads  # the second request was served from the cache
    assert (up.kind, up.url, up.filename, up.data) == ("url", url, "cat.png", None)
    assert fake_poe.last.query[-1]["attachments"] == [
        {"url": up.attachment_url, "content_type": "image/png", "name": "cat.png"}]
    assert hits == []


async def test_remote_pdf_file_part_by_url(proxy: TestClient[Any, Any], fake_poe: FakePoe,
                                           recorder: tuple[str, list[str]]) -> None:
    url, hits = recorder
    resp = await proxy.post("/v1/chat/completions", json=body(pdf("doc.pdf", url)), headers=AUTH)
    assert resp.status == 200, await resp.text()
    [up] = fake_poe.uploads
    assert (up.kind, up.url, up.filename) == ("url", url, "doc.pdf")
    assert hits == []


async def test_poe_cdn_urls_are_used_without_upload(
        proxy: TestClient[Any, Any], fake_poe: FakePoe) -> None:
    resp = await proxy.post("/v1/chat/completions", json=body(image(CDN)), headers=AUTH)
    assert resp.status == 200
    assert fake_poe.uploads == []
    assert fake_poe.last.query[-1]["attachments"] == [
        {"url": CDN, "content_type": "image/png", "name": "abc.png"}]


@pytest.mark.parametrize(("part", "param", "words"), [
    ({"type": "input_audio", "input_audio": {"data": "QUJD", "format": "wav"}},
     "messages[0].content[1].type", "input_audio"),
    ({"type": "video_url", "video_url": {"url": "https://ex.com/v.mp4"}},
     "messages[0].content[1].type", "video_url"),
    ({"type": "audio_url", "audio_url": {"url": "https://ex.com/a.mp3"}},
     "messages[0].content[1].type", "audio_url"),
    ({"type": "sticker"}, "messages[0].content[1].type", "sticker"),
    ({"type": "file", "file": {"file_id": "file-123"}}, "messages[0].content[1].file.file_id",
     "file_id"),
    (image("file:///etc/passwd"), "messages[0].content[1].image_url.url", "file:"),
    (image("ftp://ex.com/a.png"), "messages[0].content[1].image_url.url", "ftp:"),
    (image("data:image/png;base64,not*base64"), "messages[0].content[1].image_url.url", "base64"),
    (pdf(data="data:application/pdf;base64,QUJDR"), "messages[0].content[1].file.file_data",
     "base64"),
])
async def test_unsupported_or_malformed_parts_are_400(
        proxy: TestClient[Any, Any], fake_poe: FakePoe, part: dict[str, Any], param: str,
        words: str) -> None:
    # A good image first: nothing may be uploaded when a later part is bad.
    resp = await proxy.post("/v1/chat/completions",
                            json={"model": "GPT-4o", "messages": [{"role": "user", "content": [
                                image(PNG_URL), part]}]}, headers=AUTH)
    err = await assert_openai_error(resp, 400, "invalid_request_error", param=param)
    assert words in err["message"]
    assert fake_poe.uploads == [] and fake_poe.requests == []


async def test_unsupported_part_via_sdk(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.chat.completions.create(model="GPT-4o", messages=[{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "QUJD", "format": "wav"}}]}])
    assert info.value.status_code == 400
    assert "input_audio" in info.value.message
    assert fake_poe.requests == []


@pytest.mark.parametrize(("status", "want", "type_", "code"), [
    (400, 400, "invalid_request_error", "upload_failed"),
    (413, 400, "invalid_request_error", "upload_failed"),
    (401, 401, "invalid_request_error", "invalid_api_key"),
    (429, 429, None, "rate_limit_exceeded"),
    (500, 502, "server_error", "upstream_error"),
    (503, 502, "server_error", "upstream_error"),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_upload_failures_are_mapped(
        proxy: TestClient[Any, Any], fake_poe: FakePoe, status: int, want: int,
        type_: str | None, code: str, stream: bool) -> None:
    fake_poe.upload_failure = (status, {"error": {"message": "file rejected by fake"}})
    resp = await proxy.post("/v1/chat/completions", json=body(image(PNG_URL), stream=stream),
                            headers=AUTH)
    err = await assert_openai_error(resp, want, type_, code)
    assert "messages[0].content[1]" in err["message"]
    if want == 400:
        assert err["param"] == "messages[0].content[1]"
        assert "file rejected by fake" in err["message"]
    assert fake_poe.requests == []  # the bot is never asked


# The slow uploads below hand Poe URLs: a byte upload cut off mid-way leaves the fake's
# temporary file for the form part unclosed (a ResourceWarning in the fake, not ours).
async def test_upload_timeout_is_504(make_proxy: MakeProxy, fake_poe: FakePoe) -> None:
    proxy = await make_proxy(read_timeout=0.3)
    fake_poe.upload_delay = 5
    resp = await proxy.post("/v1/chat/completions", json=body(image("https://ex.com/a.png")),
                            headers=AUTH)
    await assert_openai_error(resp, 504, "server_error", "timeout")


async def test_upload_endpoint_unreachable_is_502(make_proxy: MakeProxy,
                                                  fake_poe: FakePoe) -> None:
    proxy = await make_proxy(poe_file_upload_url="http://127.0.0.1:1/upload")
    resp = await proxy.post("/v1/chat/completions", json=body(image(PNG_URL)), headers=AUTH)
    await assert_openai_error(resp, 502, "server_error", "upstream_error")
    assert fake_poe.requests == []


async def test_uploads_run_concurrently_up_to_the_cap(make_proxy: MakeProxy,
                                                      fake_poe: FakePoe) -> None:
    proxy = await make_proxy(read_timeout=1)
    fake_poe.upload_delay = 10  # no upload finishes while we look
    images = [image(f"https://ex.com/{i}.png") for i in range(MAX_CONCURRENT + 2)]
    task = asyncio.create_task(
        proxy.post("/v1/chat/completions", json=body(*images), headers=AUTH))
    async with asyncio.timeout(5):
        while len(fake_poe.uploads) < MAX_CONCURRENT:  # noqa: ASYNC110 - polling the fake
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert len(fake_poe.uploads) == MAX_CONCURRENT  # in flight together, and no more
    resp = await task
    await assert_openai_error(resp, 504, "server_error", "timeout")


async def test_concurrent_requests_share_one_upload(proxy: TestClient[Any, Any],
                                                    fake_poe: FakePoe) -> None:
    fake_poe.upload_delay = 0.2
    resps = await asyncio.gather(*[
        proxy.post("/v1/chat/completions", json=body(image(PNG_URL)), headers=AUTH)
        for _ in range(3)])
    assert [r.status for r in resps] == [200, 200, 200]
    assert len(fake_poe.uploads) == 1


@pytest.mark.parametrize("overrides", [{"url_cache_ttl_seconds": 0}, {"url_cache_size_mb": 0}])
async def test_cache_disabled(make_proxy: MakeProxy, fake_poe: FakePoe, tmp_path: Path,
                              overrides: dict[str, int]) -> None:
    proxy = await make_proxy(**overrides)
    for _ in range(2):
        resp = await proxy.post("/v1/chat/completions", json=body(image(PNG_URL)), headers=AUTH)
        assert resp.status == 200
    assert len(fake_poe.uploads) == 2
    assert not (tmp_path / FILE_NAME).exists()


async def test_corrupt_cache_file_is_survived(make_proxy: MakeProxy, fake_poe: FakePoe,
                                              tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"garbage, not SQLite" * 50)
    proxy = await make_proxy()
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            resp = await proxy.post("/v1/chat/completions", json=body(image(PNG_URL)),
                                    headers=AUTH)
            assert resp.status == 200
    assert len(fake_poe.uploads) == 2  # no cache, but no failures either
    assert len([r for r in caplog.records if "Upload cache" in r.getMessage()]) == 1


async def test_message_with_only_an_image(proxy: TestClient[Any, Any], fake_poe: FakePoe) -> None:
    resp = await proxy.post("/v1/chat/completions", json={"model": "GPT-4o", "messages": [
        {"role": "system", "content": "Describe images."},
        {"role": "user", "content": [image(PNG_URL)]}]}, headers=AUTH)
    assert resp.status == 200
    query = fake_poe.last.query
    assert query[1]["content"] == "" and len(query[1]["attachments"]) == 1
    assert "attachments" not in query[0]
