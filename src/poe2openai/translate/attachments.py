"""OpenAI image and file content parts → attachment specs. Pure: no I/O.

:func:`collect_media` walks a request's messages and returns one
:class:`MediaPart` per ``image_url`` or ``file`` part, after checking it
(400 with the part's path as ``param`` on anything malformed or unsupported).
Nothing here fetches, decodes big payloads, or uploads: :func:`decode_payload`
and :func:`digest` are pure but may be slow on large inputs, so the async layer
(:mod:`poe2openai.attachments`) runs them off the event loop and then turns
every part into a Poe attachment ``{url, content_type, name}``.

Where a part's bytes come from:

* ``data:`` URL (or, for ``file`` parts, bare base64) → decoded here, uploaded
  by the server as bytes (``source == "data"``);
* ``http(s)://`` URL → handed to Poe's upload endpoint as ``download_url`` so
  that *Poe* fetches it; this server never requests a URL a client gave it
  (``source == "url"``);
* a Poe CDN URL (host ``poecdn.net`` or a subdomain) → used as the attachment
  as it is (``source == "poe"``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from ..errors import InvalidRequest

__all__ = ["MEDIA_PARTS", "TEXT_PARTS", "MediaPart", "collect_media", "decode_payload",
           "digest", "media_from_data", "media_from_url", "parse_data_url"]

#: Content part types that carry text (read by ``request.content_text``).
#: Text parts: OpenAI's ``text`` and ``refusal`` (assistant history), the Responses API's
#: ``input_text`` / ``output_text``; a refusal's text is in ``refusal``, the others' in ``text``.
TEXT_PARTS: Final = frozenset({"text", "input_text", "output_text", "refusal"})
#: Content part types that become Poe attachments.
MEDIA_PARTS: Final = frozenset({"image_url", "file"})

#: Part types clients send that Poe's bot API cannot take, with a hint for the message.
_UNSUPPORTED: Final = {
    "input_audio": "audio input is not supported by Poe's bot API; send the recording as a "
                   "'file' part (file_data data URL) instead",
    "audio_url": "audio URLs are not supported; send the recording as a 'file' part instead",
    "video_url": "video URLs are not supported; send the video as a 'file' part instead",
    "input_image": "this is a Responses API part; use 'image_url' on Chat Completions",
    "input_file": "this is a Responses API part; use 'file' on Chat Completions",
}

Source = Literal["data", "url", "poe"]

_MAX_URL = 8192
_MAX_NAME = 200
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
_MIME_RE: Final = re.compile(rf"{_TOKEN}/{_TOKEN}")
_B64_STD: Final = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_B64_URL: Final = re.compile(rb"[A-Za-z0-9_-]*={0,2}")
_WS: Final = re.compile(r"\s+")
_CTRL: Final = re.compile(r"[\x00-\x1f\x7f]")

#: Extensions for names of unnamed data (mimetypes' answers vary between systems).
if not mimetypes.inited:  # read the system's tables at import, not inside a request
    mimetypes.init()

_EXT: Final = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/jpg": ".jpg", "image/gif": ".gif",
    "image/webp": ".webp", "image/bmp": ".bmp", "image/svg+xml": ".svg", "image/heic": ".heic",
    "image/heif": ".heif", "image/tiff": ".tiff", "image/avif": ".avif",
    "application/pdf": ".pdf", "text/plain": ".txt", "text/markdown": ".md", "text/csv": ".csv",
    "text/html": ".html", "application/json": ".json", "audio/mpeg": ".mp3", "audio/wav": ".wav",
    "audio/x-wav": ".wav", "video/mp4": ".mp4",
}


@dataclass(frozen=True, slots=True)
class MediaPart:
    """One image or file part of a request, checked but not yet uploaded."""

    message: int  #: index of its message in ``messages``
    path: str  #: ``messages[i].content[j]``, for errors
    field: str  #: path of the field that holds the data or URL, for errors
    source: Source
    url: str  #: the remote URL (``url``/``poe``); empty for data
    payload: str  #: the still-encoded data (``data``); empty for URLs
    is_base64: bool  #: how ``payload`` is encoded (else percent-encoding)
    content_type: str  #: MIME type as declared or guessed
    name: str  #: file name for Poe


def collect_media(messages: list[dict[str, Any]]) -> list[MediaPart]:
    """The media parts of all messages, in order. Raises 400 naming the part on bad input."""
    parts: list[MediaPart] = []
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            if not isinstance(part, dict):
                continue  # strings are text; other shapes are reported by content_text
            path = f"messages[{i}].content[{j}]"
            kind = part.get("type")
            if not isinstance(kind, str):  # a list or an object cannot be looked up
                raise InvalidRequest(f"{path}.type must be a string such as 'text', "
                                     f"'image_url' or 'file'; got {repr(kind)[:40]}.",
                                     param=f"{path}.type")
            if kind in TEXT_PARTS:
                continue
            if kind == "image_url":
                parts.append(_image_part(i, path, part))
            elif kind == "file":
                parts.append(_file_part(i, path, part))
            elif kind in _UNSUPPORTED:
                raise InvalidRequest(
                    f"{path}: content part type {kind!r} is not supported: {_UNSUPPORTED[kind]}.",
                    param=f"{path}.type",
                )
            else:
                raise InvalidRequest(
                    f"{path}: content part type {kind!r} is not supported; use 'text', "
                    "'image_url' or 'file'.",
                    param=f"{path}.type",
                )
    return parts


def _image_part(i: int, path: str, part: dict[str, Any]) -> MediaPart:
    spec = part.get("image_url")
    field = f"{path}.image_url"
    url: Any = spec
    if isinstance(spec, dict):
        url = spec.get("url")
        field += ".url"
        if not isinstance(url, str):
            raise InvalidRequest(f"{field} must be a string (an http(s) or data: URL).",
                                 param=field)
    elif not isinstance(spec, str):  # a bare string is tolerated: {"image_url": "https://…"}
        raise InvalidRequest(f"{field} must be an object with a 'url'.", param=field)
    url = url.strip()
    if url[:5].lower() == "data:":
        mime, payload, is_b64, params = parse_data_url(url, field)
        name = params.get("name") or params.get("filename") or ""
        return MediaPart(i, path, field, "data", "", payload, is_b64, mime,
                         safe_name(name, "image" + _ext(mime)))
    return _url_part(i, path, field, url, default_type="image/jpeg")


def _file_part(i: int, path: str, part: dict[str, Any]) -> MediaPart:
    spec = part.get("file")
    field = f"{path}.file"
    if not isinstance(spec, dict):
        raise InvalidRequest(f"{field} must be an object with 'file_data' and 'filename'.",
                             param=field)
    filename = spec.get("filename")
    if filename is not None and not isinstance(filename, str):
        raise InvalidRequest(f"{field}.filename must be a string.", param=f"{field}.filename")
    data = spec.get("file_data")
    if data is None or data == "":
        if spec.get("file_id") is not None:
            raise InvalidRequest(
                f"{field}.file_id cannot be resolved: this server has no Files API. "
                "Send the file inline as file_data (a data: URL) instead.",
                param=f"{field}.file_id",
            )
        raise InvalidRequest(f"{field}.file_data is required (a base64 data: URL).",
                             param=f"{field}.file_data")
    if not isinstance(data, str):
        raise InvalidRequest(f"{field}.file_data must be a string (a base64 data: URL).",
                             param=f"{field}.file_data")
    field += ".file_data"
    data = data.strip()
    if data[:5].lower() == "data:":
        mime, payload, is_b64, params = parse_data_url(data, field)
        name = filename or params.get("name") or params.get("filename") or ""
        if mime == "application/octet-stream" and name:
            mime = _guess_type(name) or mime
        return MediaPart(i, path, field, "data", "", payload, is_b64, mime,
                         safe_name(name, "file" + _ext(mime)))
    if data[:8].lower() == "https://" or data[:7].lower() == "http://":
        part_ = _url_part(i, path, field, data, default_type="application/octet-stream")
        if filename:
            return MediaPart(i, path, field, part_.source, part_.url, "", False,
                             _guess_type(filename) or part_.content_type,
                             safe_name(filename, part_.name))
        return part_
    # Bare base64, as some clients send it: the type comes from the file name.
    mime = (_guess_type(filename) if filename else None) or "application/octet-stream"
    return MediaPart(i, path, field, "data", "", data, True, mime,
                     safe_name(filename or "", "file" + _ext(mime)))


def media_from_url(i: int, path: str, field: str, url: str, *, image: bool,
                   filename: str | None = None) -> MediaPart:
    """A part given as a ``data:`` URL, an http(s) URL, or (files) bare base64; for the
    faces whose parts carry the URL directly (Responses, Messages)."""
    url = url.strip()
    if image:
        return _image_part(i, path, {"image_url": {"url": url}}) if not filename else \
            _file_part(i, path, {"file": {"file_data": url, "filename": filename}})
    return _file_part(i, path, {"file": {"file_data": url, "filename": filename}})


def media_from_data(i: int, path: str, field: str, data: str, content_type: str,
                    name: str = "") -> MediaPart:
    """A base64 payload with its declared type (Anthropic's ``source.type: base64``)."""
    if not _MIME_RE.fullmatch(content_type):
        raise InvalidRequest(f"{field}: media_type {content_type!r} is not a MIME type.",
                             param=field)
    default = ("image" if content_type.startswith("image/") else "file") + _ext(content_type)
    return MediaPart(i, path, field, "data", "", data.strip(), True, content_type,
                     safe_name(name, default))


def _url_part(i: int, path: str, field: str, url: str, *, default_type: str) -> MediaPart:
    if len(url) > _MAX_URL:
        raise InvalidRequest(f"{field} is longer than {_MAX_URL} characters.", param=field)
    if _CTRL.search(url) or " " in url:
        raise InvalidRequest(f"{field} contains spaces or control characters.", param=field)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise InvalidRequest(f"{field} is not a valid URL.", param=field) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"{scheme}:" if scheme else "no scheme"
        raise InvalidRequest(
            f"{field} must be an http(s) URL or a data: URL (got {shown}).", param=field
        )
    if not host:
        raise InvalidRequest(f"{field} has no host name.", param=field)
    last = unquote(parts.path.rsplit("/", 1)[-1])
    content_type = _guess_type(last) or default_type
    name = safe_name(last, "image" + _ext(content_type) if default_type.startswith("image/")
                     else "file" + _ext(content_type))
    source: Source = "poe" if host == "poecdn.net" or host.endswith(".poecdn.net") else "url"
    return MediaPart(i, path, field, source, url, "", False, content_type, name)


def parse_data_url(url: str, field: str) -> tuple[str, str, bool, dict[str, str]]:
    """``data:[<type>][;k=v]*[;base64],<payload>`` → (MIME type, payload, is base64, params).

    Only the header is checked here; the payload is decoded by :func:`decode_payload`.
    """
    comma = url.find(",")
    if not url[:5].lower() == "data:" or comma < 0:
        raise InvalidRequest(
            f"{field} is not a valid data URL: expected 'data:<type>;base64,<data>'.",
            param=field,
        )
    header = url[5:comma]
    items = [s.strip() for s in header.split(";")]
    mime = items[0].lower()
    is_b64 = False
    params: dict[str, str] = {}
    for item in items[1:]:
        if item.lower() == "base64":
            is_b64 = True
        elif "=" in item:
            key, _, value = item.partition("=")
            params[key.strip().lower()] = unquote(value.strip().strip('"'))
        elif item:
            raise InvalidRequest(f"{field} is not a valid data URL: bad parameter {item[:40]!r}.",
                                 param=field)
    if mime and not _MIME_RE.fullmatch(mime):
        raise InvalidRequest(f"{field} is not a valid data URL: bad media type {mime[:60]!r}.",
                             param=field)
    payload = url[comma + 1:]
    if not payload.strip():
        raise InvalidRequest(f"{field} is an empty data URL.", param=field)
    return mime or "application/octet-stream", payload, is_b64, params


def decode_payload(part: MediaPart) -> bytes:
    """The bytes of a ``data`` part. Strict: 400 naming the field if the data is malformed."""
    if not part.is_base64:
        return unquote_to_bytes(part.payload)
    return decode_base64(part.payload, part.field)


def decode_base64(text: str, field: str) -> bytes:
    """Strict base64 in the standard or the URL-safe alphabet; whitespace and missing
    padding are tolerated, any other stray character is an error."""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidRequest(f"{field}: the base64 data contains non-ASCII characters.",
                             param=field) from None
    if any(c in raw for c in b" \t\r\n"):
        raw = _WS.sub("", text).encode("ascii")
    standard = _B64_STD.fullmatch(raw) is not None
    if not standard and _B64_URL.fullmatch(raw) is None:
        raise InvalidRequest(
            f"{field}: the base64 data is malformed (characters outside the base64 alphabet, "
            "mixed alphabets, or misplaced padding).", param=field,
        )
    body = raw.rstrip(b"=")
    if len(body) % 4 == 1 or len(raw) - len(body) > (-len(body)) % 4:
        raise InvalidRequest(f"{field}: the base64 data has a wrong length or padding.",
                             param=field)
    body += b"=" * ((-len(body)) % 4)
    try:
        data = (base64.b64decode(body, validate=True) if standard
                else base64.urlsafe_b64decode(body))
    except binascii.Error as exc:  # pragma: no cover - excluded by the checks above
        raise InvalidRequest(f"{field}: the base64 data is malformed ({exc}).",
                             param=field) from None
    if not data:
        raise InvalidRequest(f"{field}: the data is empty.", param=field)
    return data


def digest(data: bytes) -> str:
    """SHA-256 of the full bytes (the upload cache key of data parts)."""
    return hashlib.sha256(data).hexdigest()


def safe_name(name: str, default: str) -> str:
    """A file name without directories or control characters, at most 200 characters."""
    name = _CTRL.sub("", name.replace("\\", "/").rsplit("/", 1)[-1]).strip().strip(".")
    if not name:
        return default
    if len(name) > _MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        ext = dot + ext if dot and len(ext) <= 10 else ""
        name = (stem if dot else name)[:_MAX_NAME - len(ext)] + ext
    return name


def _ext(mime: str) -> str:
    return _EXT.get(mime) or mimetypes.guess_extension(mime, strict=False) or ""


def _guess_type(name: str) -> str | None:
    return mimetypes.guess_type(name, strict=False)[0] if "." in name else None
