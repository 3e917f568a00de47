"""The Images API (``/v1/images/generations``, ``/v1/images/edits``) with the official SDK
against the fake Poe: url and b64_json answers, n, edits, refusals, errors, cancellation."""

from __future__ import annotations

import asyncio
import base64
import struct
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestClient

from tests.fake_poe import (
    MEDIA_URL,
    FakePoe,
    Received,
    Step,
    done,
    error,
    file_event,
    hang,
    sleep,
    text,
)
from tests.helpers import AUTH, assert_openai_error
from tests.test_errors import POE_FAILURES

Proxy = TestClient[Any, Any]


def png(width: int = 2, height: int = 1, seed: int = 0) -> bytes:
    """A real (tiny) PNG image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    rows = b"".join(b"\x00" + bytes([seed % 256, 0, 0]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                               0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


async def serve(fake: FakePoe, data: bytes, name: str = "cat.png") -> str:
    """Put ``data`` on the fake's file server (its upload endpoint); its URL there."""
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="image/png")
    async with aiohttp.ClientSession() as session, session.post(
            fake.base_url + "/poe_api/file_upload_3RD_PARTY_POST", data=form,
            headers=AUTH) as resp:
        assert resp.status == 200
        url: str = (await resp.json())["attachment_url"]
    fake.clear()
    return url


def image_answer(url: str, name: str = "cat.png") -> list[Step]:
    return [file_event(url, name, "image/png", inline_ref="r1"), text(f"![{name}][r1]"), done()]


async def test_generate_url(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    reply = await sdk.images.generate(model="scenario-media", prompt="a cat on a mat")
    assert [d.url for d in reply.data] == [MEDIA_URL]
    assert reply.data[0].b64_json is None
    assert reply.output_format == "png"
    assert reply.usage is not None and reply.usage.input_tokens > 0
    [query] = fake_poe.queries
    assert query.bot == "scenario-media"
    assert query.last_user_message is not None
    assert query.last_user_message["content"] == "a cat on a mat"


async def test_generate_b64_json_is_the_served_bytes(sdk: openai.AsyncOpenAI,
                                                     fake_poe: FakePoe) -> None:
    image = png(seed=7)
    fake_poe.script("Imagen-4", image_answer(await serve(fake_poe, image)))
    reply = await sdk.images.generate(model="Imagen-4", prompt="a cat",
                                      response_format="b64_json")
    assert reply.data[0].url is None
    assert base64.b64decode(reply.data[0].b64_json or "") == image


async def test_b64_json_only_from_poe_hosts(proxy: Proxy, fake_poe: FakePoe) -> None:
    """A bot can put any URL in a file event: the server fetches only Poe's own hosts."""
    fake_poe.script("Evil-Bot", image_answer("http://169.254.169.254/latest/cat.png"))
    resp = await proxy.post("/v1/images/generations", headers=AUTH, json={
        "model": "Evil-Bot", "prompt": "x", "response_format": "b64_json"})
    err = await assert_openai_error(resp, 502, "server_error", "upstream_error")
    assert "response_format 'url'" in err["message"]
    # The URL itself is handed out as it is.
    resp = await proxy.post("/v1/images/generations", headers=AUTH,
                            json={"model": "Evil-Bot", "prompt": "x"})
    assert (await resp.json())["data"] == [{"url": "http://169.254.169.254/latest/cat.png"}]


async def test_n_queries_poe_once_per_image(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    seen: list[Received] = []

    def answer(rec: Received) -> list[Step]:
        seen.append(rec)
        return image_answer(f"https://pfst.cf2.poecdn.net/base/image/{len(seen)}.png")

    fake_poe.script("FLUX-schnell", answer)
    reply = await sdk.images.generate(model="FLUX-schnell", prompt="two cats", n=2)
    assert sorted(d.url or "" for d in reply.data) == [
        "https://pfst.cf2.poecdn.net/base/image/1.png",
        "https://pfst.cf2.poecdn.net/base/image/2.png"]
    assert len(fake_poe.queries) == 2
    assert all(q.last_user_message["content"] == "two cats"  # type: ignore[index]
               for q in fake_poe.queries)


@pytest.mark.parametrize("n", [0, 11, 1.5, "2", True])
async def test_n_out_of_range(proxy: Proxy, fake_poe: FakePoe, n: Any) -> None:
    resp = await proxy.post("/v1/images/generations", headers=AUTH,
                            json={"model": "FLUX-schnell", "prompt": "x", "n": n})
    await assert_openai_error(resp, 400, "invalid_request_error", param="n")
    assert fake_poe.requests == []


@pytest.mark.parametrize(("body", "param"), [
    ({"prompt": "x"}, "model"),
    ({"model": "FLUX-schnell"}, "prompt"),
    ({"model": "FLUX-schnell", "prompt": "  "}, "prompt"),
    ({"model": "FLUX-schnell", "prompt": "x", "response_format": "png"}, "response_format"),
    ({"model": "FLUX-schnell", "prompt": "x", "size": "big"}, "size"),
    ({"model": "FLUX-schnell", "prompt": "x", "stream": True}, "stream"),
    ({"model": "FLUX-schnell", "prompt": "x", "output_compression": 101},
     "output_compression"),
])
async def test_bad_generation_requests(proxy: Proxy, fake_poe: FakePoe, body: dict[str, Any],
                                       param: str) -> None:
    resp = await proxy.post("/v1/images/generations", headers=AUTH, json=body)
    await assert_openai_error(resp, 400, "invalid_request_error", param=param)
    assert fake_poe.requests == []


async def test_edit_uploads_the_png_once_and_attaches_it(sdk: openai.AsyncOpenAI,
                                                         fake_poe: FakePoe) -> None:
    source = png(seed=3)
    fake_poe.script("GPT-Image-1", image_answer(MEDIA_URL, "edited.png"))
    reply = await sdk.images.edit(model="GPT-Image-1", prompt="make it blue", n=2,
                                  image=("in.png", source, "image/png"))
    assert [d.url for d in reply.data] == [MEDIA_URL, MEDIA_URL]
    [upload] = fake_poe.uploads
    assert upload.data == source and upload.filename == "in.png"
    assert len(fake_poe.queries) == 2
    for query in fake_poe.queries:
        msg = query.last_user_message
        assert msg is not None and msg["content"] == "make it blue"
        assert msg["attachments"] == [{"url": upload.attachment_url,
                                       "content_type": "image/png", "name": "in.png"}]


async def test_edit_several_images_and_a_mask(sdk: openai.AsyncOpenAI,
                                              fake_poe: FakePoe) -> None:
    fake_poe.script("GPT-Image-1", image_answer(MEDIA_URL))
    first, second, mask = png(seed=1), png(seed=2), png(seed=9)
    await sdk.images.edit(model="GPT-Image-1", prompt="merge them",
                          image=[("a.png", first, "image/png"), ("b.png", second, "image/png")],
                          mask=("mask.png", mask, "image/png"))
    assert [u.data for u in fake_poe.uploads] == [first, second, mask]
    msg = fake_poe.queries[0].last_user_message
    assert msg is not None
    assert [a["name"] for a in msg["attachments"]] == ["a.png", "b.png", "mask.png"]
    assert msg["content"].startswith("merge them\n\n")
    assert "mask" in msg["content"]


async def test_edit_b64_json(sdk: openai.AsyncOpenAI, fake_poe: FakePoe) -> None:
    result = png(seed=5)
    fake_poe.script("GPT-Image-1", image_answer(await serve(fake_poe, result)))
    reply = await sdk.images.edit(model="GPT-Image-1", prompt="blue",
                                  image=("in.png", png(), "image/png"),
                                  response_format="b64_json")
    assert base64.b64decode(reply.data[0].b64_json or "") == result


async def test_text_only_answer_is_an_error_quoting_the_bot(sdk: openai.AsyncOpenAI,
                                                            proxy: Proxy,
                                                            fake_poe: FakePoe) -> None:
    refusal = "I can't create images of real people."
    fake_poe.script("DALL-E-3", [text(refusal), done()])
    with pytest.raises(openai.UnprocessableEntityError) as info:
        await sdk.images.generate(model="DALL-E-3", prompt="a senator")
    assert refusal in info.value.message
    assert info.value.code == "no_image"
    resp = await proxy.post("/v1/images/generations", headers=AUTH,
                            json={"model": "DALL-E-3", "prompt": "a senator"})
    err = await assert_openai_error(resp, 422, "image_generation_error", "no_image")
    assert refusal in err["message"] and "DALL-E-3" in err["message"]
    assert resp.headers["x-should-retry"] == "false"


async def test_a_file_that_is_not_an_image_is_no_image(proxy: Proxy, fake_poe: FakePoe) -> None:
    fake_poe.script("Video-Bot", [file_event("https://pfst.cf2.poecdn.net/v.mp4", "v.mp4",
                                             "video/mp4"), done()])
    resp = await proxy.post("/v1/images/generations", headers=AUTH,
                            json={"model": "Video-Bot", "prompt": "x"})
    err = await assert_openai_error(resp, 422, code="no_image")
    assert "v.mp4 (video/mp4)" in err["message"]


@pytest.mark.parametrize(("scenario", "status", "type_", "code", "retry"), POE_FAILURES)
async def test_poe_failures_are_mapped(proxy: Proxy, scenario: str, status: int, type_: str,
                                       code: str | None, retry: str | None) -> None:
    resp = await proxy.post("/v1/images/generations", headers=AUTH,
                            json={"model": f"scenario-{scenario}", "prompt": "x"})
    err = await assert_openai_error(resp, status, type_, code)
    assert resp.headers.get("x-should-retry") == retry
    assert "<" not in err["message"]


async def test_sdk_raises_the_mapped_errors(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        await sdk.images.generate(model="scenario-no-points-text", prompt="x")
    assert info.value.code == "insufficient_quota"
    with pytest.raises(openai.BadRequestError) as bad:
        await sdk.images.generate(model="scenario-http-403", prompt="x")
    assert bad.value.code == "content_filter"


async def test_client_leaving_cancels_every_poe_query(proxy: Proxy, fake_poe: FakePoe) -> None:
    fake_poe.script("Imagen-4", [text("Generating..."), hang()])
    task = asyncio.create_task(proxy.post("/v1/images/generations", headers=AUTH,
                                          json={"model": "Imagen-4", "prompt": "x", "n": 3}))
    assert await fake_poe.wait_for_requests(3, timeout=5)
    task.cancel()
    for rec in fake_poe.requests:
        assert await rec.wait_cancelled(2.0)


async def test_first_failure_cancels_the_other_queries(proxy: Proxy, fake_poe: FakePoe) -> None:
    def answer(rec: Received) -> list[Step]:
        if len(fake_poe.requests) < 3:
            return [hang()]
        return [sleep(0.05), error("Internal server error"), done()]

    fake_poe.script("Imagen-4", answer)
    resp = await proxy.post("/v1/images/generations", headers=AUTH,
                            json={"model": "Imagen-4", "prompt": "x", "n": 3})
    await assert_openai_error(resp, 502, "server_error", "upstream_error")
    hanging = [r for r in fake_poe.requests if not r.finished.is_set()]
    assert len(hanging) == 2
    for rec in hanging:
        assert await rec.wait_cancelled(2.0)


async def test_options_become_the_bots_parameters(proxy: Proxy, fake_poe: FakePoe) -> None:
    fake_poe.script("Nano-Banana", image_answer(MEDIA_URL))
    resp = await proxy.post("/v1/images/generations", headers=AUTH, json={
        "model": "Nano-Banana", "prompt": "x", "size": "1792x1024", "quality": "hd",
        "style": "vivid", "background": "auto", "user": "u1"})
    assert resp.status == 200, await resp.text()
    params = fake_poe.queries[0].last_user_message["parameters"]  # type: ignore[index]
    assert params == {"aspect_ratio": "16:9"}
    assert resp.headers["x-dropped-params"] == "quality, style, user"

    fake_poe.clear()
    fake_poe.script("FLUX-schnell", image_answer(MEDIA_URL))
    resp = await proxy.post("/v1/images/generations", headers=AUTH, json={
        "model": "FLUX-schnell", "prompt": "x", "size": "1024x1536"})
    assert fake_poe.queries[0].last_user_message["parameters"] == {  # type: ignore[index]
        "aspect": "9:16"}
    assert "x-dropped-params" not in resp.headers


async def test_a_parameter_by_its_own_name_wins(sdk: openai.AsyncOpenAI,
                                                fake_poe: FakePoe) -> None:
    fake_poe.script("Nano-Banana", image_answer(MEDIA_URL))
    await sdk.images.generate(model="Nano-Banana", prompt="x", size="1024x1024",
                              extra_body={"aspect_ratio": "21:9", "image_only": True})
    assert fake_poe.queries[0].last_user_message["parameters"] == {  # type: ignore[index]
        "aspect_ratio": "21:9", "image_only": True}


async def test_without_the_bots_schema_options_are_dropped(proxy: Proxy,
                                                           fake_poe: FakePoe) -> None:
    resp = await proxy.post("/v1/images/generations", headers=AUTH, json={
        "model": "scenario-media", "prompt": "x", "size": "512x512", "quality": "low"})
    assert resp.status == 200
    assert resp.headers["x-dropped-params"] == "quality, size"
    assert "parameters" not in fake_poe.queries[0].last_user_message  # type: ignore[operator]


async def test_routes_without_v1(proxy: Proxy, fake_poe: FakePoe) -> None:
    resp = await proxy.post("/images/generations/", headers=AUTH,
                            json={"model": "scenario-media", "prompt": "x"})
    assert (await resp.json())["data"] == [{"url": MEDIA_URL}]
    assert float(resp.headers["x-proxy-overhead-ms"]) >= 0


async def test_b64_download_goes_through_the_outbound_proxy(
        make_proxy: Callable[..., Awaitable[Proxy]], fake_poe: FakePoe,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake Poe plays the HTTP proxy: Poe's host itself does not exist."""
    image = png(seed=11)
    served = await serve(fake_poe, image)
    path = served[len(fake_poe.base_url):]
    fake_poe.script("Imagen-4", image_answer("http://poe.invalid" + path))
    monkeypatch.setenv("HTTP_PROXY", fake_poe.base_url)
    proxy = await make_proxy(poe_base_url="http://poe.invalid")
    resp = await proxy.post("/v1/images/generations", headers=AUTH, json={
        "model": "Imagen-4", "prompt": "x", "response_format": "b64_json"})
    assert resp.status == 200, await resp.text()
    assert base64.b64decode((await resp.json())["data"][0]["b64_json"]) == image
