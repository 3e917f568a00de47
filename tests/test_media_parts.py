"""Pure tests of image/file content parts: collection, data URLs, base64 (no I/O)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from poe2openai.errors import InvalidRequest
from poe2openai.registry import ResolvedModel
from poe2openai.translate.attachments import (
    collect_media,
    decode_base64,
    decode_payload,
    parse_data_url,
    safe_name,
)
from poe2openai.translate.request import build_poe_query, parse_chat_request

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def user(*parts: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(parts)}]


def image(url: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, **extra}}


def raises(messages: list[dict[str, Any]], param: str) -> str:
    with pytest.raises(InvalidRequest) as info:
        collect_media(messages)
    assert info.value.param == param, info.value.message
    assert info.value.status == 400
    return info.value.message


def test_image_data_url() -> None:
    [part] = collect_media(user({"type": "text", "text": "what?"}, image(PNG_URL, detail="high")))
    assert (part.message, part.path, part.source) == (0, "messages[0].content[1]", "data")
    assert part.content_type == "image/png" and part.name == "image.png"
    assert decode_payload(part) == PNG


def test_image_url_as_bare_string_is_tolerated() -> None:
    [part] = collect_media(user({"type": "image_url", "image_url": "https://ex.com/a/cat.webp"}))
    assert part.source == "url" and part.url == "https://ex.com/a/cat.webp"
    assert part.name == "cat.webp" and part.content_type == "image/webp"


@pytest.mark.parametrize("url", [
    "https://pfst.cf2.poecdn.net/base/image/abc?w=1", "https://poecdn.net/x.png",
    "http://a.b.poecdn.net/y",
])
def test_poe_cdn_urls_are_used_directly(url: str) -> None:
    [part] = collect_media(user(image(url)))
    assert part.source == "poe" and part.url == url
    assert part.content_type.startswith("image/")


@pytest.mark.parametrize("url", ["https://evilpoecdn.net/a.png",
                                 "https://poecdn.net.evil.com/a.png"])
def test_lookalike_hosts_are_not_poe(url: str) -> None:
    assert collect_media(user(image(url)))[0].source == "url"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://ex.com/a.png",
                                 "javascript:alert(1)", "ex.com/a.png", "//ex.com/a.png",
                                 "https:///nohost.png", "https://ex.com/a b.png"])
def test_other_schemes_and_bad_urls_are_400(url: str) -> None:
    raises(user({"type": "text", "text": "x"}, image(url)), "messages[0].content[1].image_url.url")


@pytest.mark.parametrize("url", [
    "data:image/png;base64,iVBORw0K!!GgoAAA",  # bad character
    "data:image/png;base64,abc-de+f",  # mixed alphabets
    "data:image/png;base64,a",  # impossible length
    "data:image/png;base64,QUJD=",  # padding where none is needed
    "data:image/png;base64,QQ==QQ==",  # padding in the middle
    "data:image/png;base64,",  # empty
    "data:image/png;base64",  # no comma
    "data:image png;base64,QUJD",  # bad media type
    "data:image/png;bogus;base64,QUJD",  # bad parameter
])
def test_malformed_data_urls_are_400_naming_the_field(url: str) -> None:
    messages = [{"role": "system", "content": "s"}, *user(image(PNG_URL), image(url))]
    with pytest.raises(InvalidRequest) as info:
        for part in collect_media(messages):
            decode_payload(part)
    assert info.value.param == "messages[1].content[1].image_url.url"


def test_base64_alphabets_whitespace_and_padding() -> None:
    data = bytes(range(256)) * 3
    std = base64.b64encode(data).decode()
    url = base64.urlsafe_b64encode(data).decode()
    assert "+" in std or "/" in std
    assert decode_base64(std, "f") == data
    assert decode_base64(url, "f") == data
    assert decode_base64(url.rstrip("="), "f") == data  # missing padding is fine
    wrapped = "\n".join(std[i:i + 76] for i in range(0, len(std), 76))
    assert decode_base64(wrapped, "f") == data
    with pytest.raises(InvalidRequest):
        decode_base64("QUJD\u00e9", "f")


def test_data_url_parameters() -> None:
    mime, payload, is_b64, params = parse_data_url(
        "data:Image/PNG;name=my%20pic.png;base64,QUJD", "f")
    assert (mime, payload, is_b64, params) == ("image/png", "QUJD", True, {"name": "my pic.png"})
    [part] = collect_media(user(image("data:image/png;name=my%20pic.png;base64,QUJD")))
    assert part.name == "my pic.png"
    # Not base64: percent-encoded bytes (RFC 2397).
    [part] = collect_media(user({"type": "file", "file": {
        "filename": "notes.txt", "file_data": "data:text/plain,hello%20world"}}))
    assert decode_payload(part) == b"hello world" and part.content_type == "text/plain"
    # No media type at all.
    assert parse_data_url("data:;base64,QUJD", "f")[0] == "application/octet-stream"


def test_file_part_pdf() -> None:
    pdf = b"%PDF-1.4 fake"
    [part] = collect_media(user({"type": "file", "file": {
        "filename": "../../etc/report.pdf",
        "file_data": "data:application/pdf;base64," + base64.b64encode(pdf).decode()}}))
    assert part.source == "data" and part.name == "report.pdf"
    assert part.content_type == "application/pdf"
    assert part.field == "messages[0].content[0].file.file_data"
    assert decode_payload(part) == pdf


def test_file_part_bare_base64_takes_type_from_name() -> None:
    [part] = collect_media(user({"type": "file", "file": {
        "filename": "a.pdf", "file_data": base64.b64encode(b"%PDF").decode()}}))
    assert part.content_type == "application/pdf" and decode_payload(part) == b"%PDF"


def test_file_id_cannot_be_resolved() -> None:
    msg = raises(user({"type": "file", "file": {"file_id": "file-abc"}}),
                 "messages[0].content[0].file.file_id")
    assert "file_data" in msg


@pytest.mark.parametrize(("part", "param"), [
    ({"type": "file", "file": "x"}, "messages[0].content[0].file"),
    ({"type": "file", "file": {}}, "messages[0].content[0].file.file_data"),
    ({"type": "file", "file": {"file_data": 3}}, "messages[0].content[0].file.file_data"),
    ({"type": "file", "file": {"file_data": "QUJD", "filename": 1}},
     "messages[0].content[0].file.filename"),
    ({"type": "image_url"}, "messages[0].content[0].image_url"),
    ({"type": "image_url", "image_url": {"detail": "low"}}, "messages[0].content[0].image_url.url"),
])
def test_malformed_parts(part: dict[str, Any], param: str) -> None:
    raises(user(part), param)


@pytest.mark.parametrize("kind", ["input_audio", "video_url", "audio_url", "hologram", None])
def test_unsupported_part_types_name_type_and_path(kind: str | None) -> None:
    msg = raises([{"role": "user", "content": "hi"},
                  *user({"type": "text", "text": "x"}, {"type": kind, kind or "x": {}})],
                 "messages[1].content[1].type")
    assert repr(kind) in msg and "messages[1].content[1]" in msg


def test_safe_name() -> None:
    assert safe_name("a/b\\c.png", "d") == "c.png"
    assert safe_name("\x00\x1f", "d") == "d"
    long = safe_name("x" * 500 + ".jpeg", "d")
    assert len(long) == 200 and long.endswith(".jpeg")


def test_parse_chat_request_collects_and_build_attaches() -> None:
    body = {"model": "m", "messages": [
        {"role": "system", "content": "be nice"},
        *user({"type": "text", "text": "look"}, image(PNG_URL),
              {"type": "image_url", "image_url": "https://ex.com/b.jpg"}),
    ]}
    req = parse_chat_request(body)
    assert [p.path for p in req.media] == ["messages[1].content[1]", "messages[1].content[2]"]
    att = [{"url": "https://cdn/x", "content_type": "image/png", "name": "image.png"}]
    req.attachments = {1: att}
    query = build_poe_query(req, ResolvedModel("m", "m"))["query"]
    assert "attachments" not in query[0]
    assert query[1]["attachments"] == att and query[1]["content"] == "look"


def test_parse_chat_request_rejects_unsupported_parts_before_anything_else() -> None:
    body = {"model": "m", "messages": user({"type": "input_audio",
                                            "input_audio": {"data": "QUJD", "format": "wav"}})}
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(body)
    assert info.value.param == "messages[0].content[0].type"
