"""The Images API's answer, from the collected answers of its Poe queries. Pure: no I/O.

The images are the ``file`` events of Poe's answers (:attr:`Accumulator.files`) that are
images: an ``image/*`` content type, or, without a usable one, an image file name. A
query whose answer has no image is an error (:class:`NoImage`, 422) that quotes the bot's
text: bots answer that way to refuse a prompt, or when they are not image bots at all.

Body: ``{"created", "data": [{"url"} | {"b64_json"}, …], "output_format"?, "usage"}``, the
images of every query in order. ``output_format`` (``png``, ``jpeg``, ``webp``…) is there
when all images have the same type; ``usage`` counts the prompt's tokens over every query
(Poe reports no image tokens).
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from ..errors import ProxyError
from .conversation import Usage
from .items import Accumulator

__all__ = ["QUOTED", "Image", "NoImage", "answer_images", "images_body", "no_image",
           "total_usage"]

#: How much of a bot's text an error quotes.
QUOTED: Final = 2000


class NoImage(ProxyError):
    """The bot answered without an image (usually a refusal, quoted in the message).
    Retrying the same request costs points for the same outcome."""

    status = 422
    type = "image_generation_error"
    code = "no_image"
    retryable = False


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    content_type: str
    name: str


def answer_images(acc: Accumulator) -> list[Image]:
    """The images among the files of one answer, in order, each URL once."""
    out: list[Image] = []
    seen: set[str] = set()
    for url, content_type, name in acc.files:
        if url in seen or not _http(url):
            continue
        mime = content_type.split(";")[0].strip().lower()
        if not mime.startswith("image/"):
            if mime and mime != "application/octet-stream":
                continue
            guessed = _guess(name) or _guess(urlsplit(url).path)
            if guessed is None:
                continue
            mime = guessed
        seen.add(url)
        out.append(Image(url, mime, name))
    return out


def no_image(bot: str, acc: Accumulator) -> NoImage:
    """The error for an answer without an image, quoting what the bot said instead."""
    text = "".join(acc.content).strip()
    others = [f"{name or urlsplit(url).path.rsplit('/', 1)[-1] or 'file'} ({ctype or 'unknown type'})"
              for url, ctype, name in acc.files]
    if text:
        quoted = text if len(text) <= QUOTED else text[:QUOTED] + "…"
        what = f"with text and no image: {quoted}"
    elif others:
        what = "with files that are not images: " + ", ".join(others[:5])
    else:
        what = "with nothing"
    return NoImage(f"The bot '{bot}' answered {what}")


def total_usage(usages: list[Usage]) -> Usage:
    return Usage(sum(u.input_tokens for u in usages), sum(u.output_tokens for u in usages),
                 sum(u.reasoning_tokens for u in usages), sum(u.cached_tokens for u in usages))


def images_body(created: int, data: list[dict[str, Any]], images: list[Image],
                usage: Usage) -> dict[str, Any]:
    """The answer's JSON body; ``data`` holds one ``{"url"}`` or ``{"b64_json"}`` per image."""
    body: dict[str, Any] = {"created": created, "data": data}
    formats = {_format(i.content_type) for i in images}
    if len(formats) == 1 and None not in formats:
        body["output_format"] = formats.pop()
    body["usage"] = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "input_tokens_details": {"text_tokens": usage.input_tokens, "image_tokens": 0},
    }
    return body


def _format(mime: str) -> str | None:
    sub = mime.partition("/")[2]
    return {"jpg": "jpeg", "svg+xml": "svg"}.get(sub, sub) or None


def _http(url: str) -> bool:
    try:
        return urlsplit(url).scheme.lower() in ("http", "https")
    except ValueError:
        return False


def _guess(name: str) -> str | None:
    mime = mimetypes.guess_type(name, strict=False)[0] if "." in name else None
    return mime if mime is not None and mime.startswith("image/") else None
