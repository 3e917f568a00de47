"""The Images API's parts: the multipart reader's bounds (through HTTP), the mapping of
OpenAI image options onto a bot's parameters, and the image download's bounds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from poe2openai.api.form import MAX_PARTS, parse_form
from poe2openai.errors import InvalidRequest, UpstreamError
from poe2openai.poe.download import fetch_file, is_poe_host
from poe2openai.translate.images_params import map_image_options
from tests.fake_poe import MEDIA_URL, FakePoe
from tests.helpers import AUTH, assert_openai_error
from tests.test_images import image_answer, png, serve

Proxy = TestClient[Any, Any]
BOUNDARY = "XyZ123"
FORM = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **AUTH}


def field(name: str, value: str) -> bytes:
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n").encode()


def file(name: str, filename: str, data: bytes, ctype: str = "image/png") -> bytes:
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n').encode() + data + b"\r\n"


END = f"--{BOUNDARY}--\r\n".encode()


async def test_raw_multipart_edit(proxy: Proxy, fake_poe: FakePoe) -> None:
    fake_poe.script("GPT-Image-1", image_answer(MEDIA_URL))
    body = (b"preamble\r\n" + field("model", "GPT-Image-1") + field("prompt", "blue é")
            + field("n", "1") + file("image[]", "x.png", png()) + END)
    resp = await proxy.post("/v1/images/edits", data=body, headers=FORM)
    assert resp.status == 200, await resp.text()
    assert fake_poe.queries[0].last_user_message["content"] == "blue é"  # type: ignore[index]


@pytest.mark.parametrize(("body", "param", "needle"), [
    (field("model", "m") + field("prompt", "p") + END, "image", "required"),
    (field("model", "m") + field("prompt", "p") + file("image", "a.txt", b"hello", "text/plain")
     + END, "image", "not a PNG"),
    (field("model", "m") + field("prompt", "p") + file("image", "a.png", b"") + END, "image",
     "empty"),
    (field("model", "m") + field("prompt", "p") + field("image", "x") + END, "image",
     "file part"),
    (field("model", "m") + field("prompt", "p") + file("picture", "a.png", png()) + END,
     "picture", "Unexpected file field"),
    (field("model", "m") + field("prompt", "p") + field("prompt", "q")
     + file("image", "a.png", png()) + END, "prompt", "more than once"),
    (field("model", "m") + field("prompt", "p") + field("n", "two")
     + file("image", "a.png", png()) + END, "n", "whole number"),
    (field("model", "m") + field("prompt", "p") + file("image", "a.png", png())
     + file("mask", "m.png", png()) + file("mask", "m.png", png()) + END, "mask", "one"),
    (field("model", "m") + field("prompt", "p") + file("image", "a.png", png())
     + field("stream", "true") + END, "stream", "not supported"),
    (field("model", "m") + field("prompt", "p") + file("image", "a.png", png()),
     None, "closing boundary"),
    (b"".join(field(f"f{i}", "x") for i in range(MAX_PARTS + 1)) + END, None, "parts"),
    (f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nx\r\n".encode() + END, None,
     "Content-Disposition"),
    (b"no boundary anywhere", None, "boundary"),
])
async def test_bad_forms(proxy: Proxy, fake_poe: FakePoe, body: bytes, param: str | None,
                         needle: str) -> None:
    resp = await proxy.post("/v1/images/edits", data=body, headers=FORM)
    err = await assert_openai_error(resp, 400, "invalid_request_error", param=param)
    assert needle in err["message"]
    assert fake_poe.requests == [] and fake_poe.uploads == []


async def test_edit_needs_multipart(proxy: Proxy, fake_poe: FakePoe) -> None:
    resp = await proxy.post("/v1/images/edits", headers=AUTH,
                            json={"model": "GPT-Image-1", "prompt": "x"})
    err = await assert_openai_error(resp, 400, "invalid_request_error")
    assert "multipart/form-data" in err["message"]


async def test_form_over_max_request_size(make_proxy: Callable[..., Awaitable[Proxy]],
                                          fake_poe: FakePoe) -> None:
    proxy = await make_proxy(max_request_size=4096)
    body = field("model", "m") + field("prompt", "p") + file("image", "a.png", b"x" * 5000) + END
    resp = await proxy.post("/v1/images/edits", data=body, headers=FORM)
    err = await assert_openai_error(resp, 413, "invalid_request_error", "request_too_large")
    assert "4096" in err["message"]
    assert fake_poe.uploads == []


def test_parse_form_names_and_filenames() -> None:
    raw = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"a b\"\r\n\r\n1\r\n"
           f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=image; "
           f"filename*=UTF-8''%C3%A9t%C3%A9.png\r\n\r\n").encode() + b"\x00\r\n\x01" \
        + f"\r\n--{BOUNDARY}--".encode()
    form = parse_form(raw, BOUNDARY)
    assert form.fields == {"a b": "1"}
    [f] = form.files
    assert (f.field, f.filename, f.content_type, f.data) == (
        "image", "été.png", "application/octet-stream", b"\x00\r\n\x01")
    with pytest.raises(InvalidRequest, match="headers are longer"):
        parse_form(f"--{BOUNDARY}\r\nX: {'y' * 20000}\r\n\r\nz\r\n--{BOUNDARY}--".encode(),
                   BOUNDARY)


NANO = [{"name": "aspect_ratio", "schema": {"type": "string", "enum": [
    "1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9"]}}]


@pytest.mark.parametrize(("options", "schema", "params", "dropped"), [
    ({"size": "1536x1024"}, NANO, {"aspect_ratio": "3:2"}, []),
    ({"size": "256x256"}, NANO, {"aspect_ratio": "1:1"}, []),
    ({"size": "1024x1792"}, NANO, {"aspect_ratio": "9:16"}, []),
    ({"size": "1200x800"}, [{"name": "aspect", "schema": {"type": "string"}}],
     {"aspect": "3:2"}, []),
    ({"size": "1024x1024"}, [{"name": "size", "schema": {"enum": ["1024x1024", "512x512"]}}],
     {"size": "1024x1024"}, []),
    ({"size": "640x480"}, [{"name": "width", "schema": {"type": "integer", "maximum": 2048}},
                           {"name": "height", "schema": {"type": "integer"}}],
     {"width": 640, "height": 480}, []),
    ({"size": "4096x4096"}, [{"name": "width", "schema": {"type": "integer", "maximum": 2048}},
                             {"name": "height", "schema": {"type": "integer"}}], {}, ["size"]),
    ({"quality": "hd"}, [{"name": "quality", "schema": {"enum": ["low", "medium", "high"]}}],
     {"quality": "high"}, []),
    ({"quality": "standard"}, [{"name": "quality", "schema": {"enum": ["Low", "Medium"]}}],
     {"quality": "Medium"}, []),
    ({"quality": "ultra"}, [{"name": "quality", "schema": {"enum": ["low", "high"]}}], {},
     ["quality"]),
    ({"background": "transparent"}, [{"name": "transparent_background",
                                      "schema": {"type": "boolean"}}],
     {"transparent_background": True}, []),
    ({"output_format": "jpeg"}, [{"name": "format", "schema": {"enum": ["png", "jpg"]}}],
     {"format": "jpg"}, []),
    ({"output_compression": 80}, [{"name": "output_compression",
                                   "schema": {"type": "integer", "minimum": 0}}],
     {"output_compression": 80}, []),
    ({"style": "vivid", "size": "512x512"}, [], {}, ["size", "style"]),
    ({"style": "vivid"}, None, {}, ["style"]),
])
def test_map_image_options(options: dict[str, Any], schema: Any, params: dict[str, Any],
                           dropped: list[str]) -> None:
    candidates, left = map_image_options(options, schema)
    assert {c.name: c.value for c in candidates} == params
    assert left == dropped


def test_poe_hosts() -> None:
    assert is_poe_host("https://pfst.cf2.poecdn.net/base/x.png", [])
    assert is_poe_host("https://poecdn.net/x.png", [])
    assert is_poe_host("http://api.poe.com/files/1", ["api.poe.com"])
    assert not is_poe_host("https://evilpoecdn.net/x.png", [])
    assert not is_poe_host("https://poecdn.net.evil.com/x.png", [])
    assert not is_poe_host("file:///etc/passwd", ["api.poe.com"])
    assert not is_poe_host("http://127.0.0.1/x.png", ["api.poe.com"])


async def test_download_is_bounded(fake_poe: FakePoe) -> None:
    url = await serve(fake_poe, png(width=64, height=64))
    host = url.split("/")[2].split(":")[0]
    async with aiohttp.ClientSession() as session:
        data, ctype = await fetch_file(session, url, hosts=[host], proxy=None)
        assert data.startswith(b"\x89PNG") and ctype == "image/png"
        with pytest.raises(UpstreamError, match="larger than"):
            await fetch_file(session, url, hosts=[host], proxy=None, max_bytes=len(data) - 1)
        with pytest.raises(UpstreamError, match="HTTP 404"):
            await fetch_file(session, url.replace("/files/", "/files/nope"), hosts=[host],
                             proxy=None)
