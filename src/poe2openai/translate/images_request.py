"""The Images API's requests → neutral conversation. Pure: no I/O.

``POST /v1/images/generations`` is JSON (:func:`parse_generation_request`);
``POST /v1/images/edits`` is ``multipart/form-data``, read by the api layer into text
fields and :class:`FormFile` parts (:func:`parse_edit_request`). Both become one user turn
(the prompt; for edits the images, and the mask, as attachments) of a
:class:`~.conversation.Conversation` that wants the answer's files as they are
(``want_files``). Each of the ``n`` images is one Poe query of that conversation.

The OpenAI image options (``size``, ``quality``, ``style``, ``background``,
``output_format``…) are kept in :attr:`ImagesRequest.options`; once the bot's parameter
schema is known, :mod:`.images_params` maps them onto the bot's own parameters (or names
them in ``x-dropped-params``). Any other field is a bot parameter candidate, as on Chat
(``extra_body={"aspect_ratio": "16:9"}``).
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, field
from typing import Any, Final

from ..errors import InvalidRequest
from .attachments import MediaPart, safe_name
from .conversation import Conversation, Turn
from .fields import request_object
from .params import collect_candidates

__all__ = ["IMAGE_FIELDS", "MAPPED_OPTIONS", "MAX_IMAGES", "MAX_INPUT_IMAGES", "FormFile",
           "ImagesRequest", "image_size", "parse_edit_request", "parse_generation_request",
           "sniff_image"]

#: The most images one request may ask for (``n``): OpenAI's own limit.
MAX_IMAGES: Final = 10
#: The most input images of an edit.
MAX_INPUT_IMAGES: Final = 16

#: OpenAI image options mapped onto the bot's own parameters where it has an equivalent.
MAPPED_OPTIONS: Final = ("size", "quality", "style", "background", "output_format",
                         "output_compression", "moderation", "input_fidelity")
#: The Images API's own fields: never sent to the bot as parameters of the same name.
IMAGE_FIELDS: Final = frozenset({"model", "prompt", "n", "response_format", "user", "stream",
                                 "partial_images", "safety_identifier", "image", "mask",
                                 *MAPPED_OPTIONS})
#: Fields read here; any other field is accepted and, unless the bot takes it as a
#: parameter, named in ``x-dropped-params``.
_READ: Final = frozenset({"model", "prompt", "n", "response_format", "stream",
                          *MAPPED_OPTIONS})

_SIZE: Final = re.compile(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})")
_MASK_NOTE: Final = ("\n\n(The last attached image is a mask: its fully transparent areas "
                     "show where the first image is to be edited.)")


@dataclass(frozen=True, slots=True)
class FormFile:
    """One file part of a multipart form."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class ImagesRequest:
    conv: Conversation
    #: How many images: one Poe query each.
    n: int = 1
    #: ``url`` (Poe's file URLs) or ``b64_json`` (the server downloads them).
    response_format: str = "url"
    #: The OpenAI image options given, by field name (``auto`` values left out).
    options: dict[str, Any] = field(default_factory=dict)


def parse_generation_request(body: Any) -> ImagesRequest:
    """``POST /v1/images/generations``: 400 naming the field on anything malformed."""
    return _parse(request_object(body), [])


def parse_edit_request(fields: dict[str, str], files: list[FormFile]) -> ImagesRequest:
    """``POST /v1/images/edits``, from the form's text fields and file parts."""
    body: dict[str, Any] = dict(fields)
    for name in ("n", "output_compression", "partial_images"):
        if name in body:
            body[name] = _form_int(body[name], name)
    if "stream" in body:
        body["stream"] = body["stream"].strip().lower() in ("true", "1")
    images: list[FormFile] = []
    mask: FormFile | None = None
    for f in files:
        if f.field == "mask":
            if mask is not None:
                raise InvalidRequest("Only one 'mask' may be sent.", param="mask")
            mask = f
        elif f.field == "image" or re.fullmatch(r"image\[[0-9]*\]", f.field):
            images.append(f)
        else:
            raise InvalidRequest(f"Unexpected file field {f.field[:60]!r}: send the images as "
                                 "'image' (or 'image[]') and an optional 'mask'.",
                                 param=f.field[:60])
    for name in fields:
        if name == "image" or name == "mask" or name.startswith("image["):
            raise InvalidRequest(f"'{name}' must be a file part (with a filename), not a text "
                                 "field.", param=name)
    if not images:
        raise InvalidRequest("'image' is required: send one or more image files.",
                             param="image")
    if len(images) > MAX_INPUT_IMAGES:
        raise InvalidRequest(f"At most {MAX_INPUT_IMAGES} images may be edited at once.",
                             param="image")
    parts = [_image_part(f, f"image[{i}]" if len(images) > 1 else "image", "image")
             for i, f in enumerate(images)]
    if mask is not None:
        parts.append(_image_part(mask, "mask", "mask"))
    return _parse(body, parts)


def _parse(body: dict[str, Any], parts: list[MediaPart]) -> ImagesRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' is required: the name of a Poe image bot (e.g. "
                             "'GPT-Image-1', 'FLUX-pro-1.1', 'Imagen-4').", param="model")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("'prompt' is required and must be a non-empty string.",
                             param="prompt")
    n = body.get("n")
    if n is None:
        n = 1
    elif (not isinstance(n, int | float) or isinstance(n, bool) or not math.isfinite(n)
          or n != int(n) or not 1 <= n <= MAX_IMAGES):
        raise InvalidRequest(f"'n' must be a whole number from 1 to {MAX_IMAGES}.", param="n")
    fmt = body.get("response_format")
    if fmt is None:
        fmt = "url"
    elif fmt not in ("url", "b64_json"):
        raise InvalidRequest("'response_format' must be 'url' or 'b64_json'.",
                             param="response_format")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    if stream:
        raise InvalidRequest("Streamed image generation is not supported: leave 'stream' out "
                             "(the answer comes when the images are ready).", param="stream")
    options = _options(body)
    if any(p.path == "mask" for p in parts):
        prompt += _MASK_NOTE
    conv = Conversation(model=model.strip(), turns=[Turn("user", prompt)], want_files=True)
    conv.media = parts
    conv.param_candidates = collect_candidates(body, IMAGE_FIELDS)
    conv.dropped = sorted(k for k in body if k not in _READ and body[k] is not None)
    return ImagesRequest(conv, int(n), fmt, options)


def _options(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in MAPPED_OPTIONS:
        value = body.get(name)
        if value is None:
            continue
        if name == "output_compression":
            if (not isinstance(value, int | float) or isinstance(value, bool)
                    or not math.isfinite(value) or value != int(value) or not 0 <= value <= 100):
                raise InvalidRequest("'output_compression' must be a whole number from 0 to "
                                     "100.", param=name)
            out[name] = int(value)
            continue
        if not isinstance(value, str) or not value.strip():
            raise InvalidRequest(f"'{name}' must be a non-empty string.", param=name)
        value = value.strip().lower()
        if name == "size" and value != "auto" and not _SIZE.fullmatch(value):
            raise InvalidRequest("'size' must be 'auto' or '<width>x<height>' in pixels, such "
                                 "as '1024x1536'.", param="size")
        if value != "auto":  # "auto": the bot's own choice, nothing to send
            out[name] = value
    return out


def image_size(size: str) -> tuple[int, int]:
    """``"1536x1024"`` → ``(1536, 1024)`` (a size :func:`parse_generation_request` accepted)."""
    m = _SIZE.fullmatch(size)
    assert m is not None
    return int(m.group(1)), int(m.group(2))


def _form_int(raw: str, name: str) -> int:
    text = raw.strip()
    if not re.fullmatch(r"[0-9]{1,6}", text):
        raise InvalidRequest(f"'{name}' must be a whole number.", param=name)
    return int(text)


#: Leading bytes of the image formats an edit takes.
_MAGIC: Final = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                 (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


def sniff_image(data: bytes) -> str | None:
    """The image type of ``data`` from its first bytes (PNG, JPEG, WebP, GIF), or ``None``."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _image_part(f: FormFile, path: str, param: str) -> MediaPart:
    if not f.data:
        raise InvalidRequest(f"{path} is an empty file.", param=param)
    mime = sniff_image(f.data)
    if mime is None:
        raise InvalidRequest(f"{path} ({f.filename[:80]!r}) is not a PNG, JPEG, WebP or GIF "
                             "image.", param=param)
    ext = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif",
           "image/webp": ".webp"}[mime]
    stem = "mask" if param == "mask" else "image"
    payload = base64.b64encode(f.data).decode("ascii")
    return MediaPart(0, path, path, "data", "", payload, True, mime,
                     safe_name(f.filename, stem + ext))
