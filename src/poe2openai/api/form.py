"""Reading a ``multipart/form-data`` body (the Images API's edits), bounded like JSON bodies.

The body is received the way :mod:`.body` receives JSON (``MAX_REQUEST_SIZE``, then 413;
``BODY_READ_TIMEOUT``, then 408; room in the shared body budget taken as bytes arrive,
503 when full), then split into parts in memory by :func:`parse_form` (in a worker
thread, a few at a time, over ``LARGE_BODY``). The form may have at most
:data:`MAX_PARTS` parts, part headers of at most :data:`MAX_PART_HEADERS` bytes and text
fields of at most :data:`MAX_FIELD` bytes; a field name given twice is an error. Every
failure is a 400 naming the problem.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from email.message import Message
from typing import Final

from aiohttp import hdrs, web
from aiohttp.helpers import parse_mimetype

from .. import keys
from ..errors import InvalidRequest
from ..translate.images_request import FormFile
from .body import LARGE_BODY, _receive

__all__ = ["MAX_FIELD", "MAX_PARTS", "MAX_PART_HEADERS", "Form", "parse_form", "read_form"]

#: The most parts (fields and files) a form may have.
MAX_PARTS: Final = 64
#: The largest header block of one part, in bytes.
MAX_PART_HEADERS: Final = 16384
#: The largest text field, in bytes.
MAX_FIELD: Final = 1024 * 1024


@dataclass(slots=True)
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[FormFile] = field(default_factory=list)


async def read_form(request: web.Request) -> Form:
    """The request's ``multipart/form-data`` body; every failure is a ``ProxyError``."""
    mime = parse_mimetype(request.headers.get(hdrs.CONTENT_TYPE, ""))
    if (mime.type, mime.subtype) != ("multipart", "form-data"):
        raise InvalidRequest("The request body must be multipart/form-data (the image files, "
                             "the prompt and the other fields as form parts).")
    boundary = mime.parameters.get("boundary", "")
    if not 1 <= len(boundary) <= 70:
        raise InvalidRequest("The multipart/form-data Content-Type has no valid boundary.")
    config = request.config_dict
    with config[keys.BODY_BUDGET].hold() as share:
        raw = await _receive(request, config[keys.SETTINGS], share)
        if len(raw) <= LARGE_BODY:
            return parse_form(raw, boundary)
        async with config[keys.LARGE_BODIES]:
            return await asyncio.to_thread(parse_form, raw, boundary)


def parse_form(raw: bytes | bytearray, boundary: str) -> Form:
    """The fields and files of a multipart body (RFC 7578)."""
    delim = b"--" + boundary.encode("latin-1")
    if raw.startswith(delim):
        pos = len(delim)
    else:
        first = raw.find(b"\r\n" + delim)
        if first < 0:
            raise _malformed("the boundary never appears")
        pos = first + 2 + len(delim)
    form = Form()
    count = 0
    while True:
        if raw[pos:pos + 2] == b"--":
            return form
        eol = raw.find(b"\r\n", pos)
        if eol < 0 or raw[pos:eol].strip(b" \t"):
            raise _malformed("a boundary line is followed by other characters")
        start = eol + 2
        if raw[start:start + 2] == b"\r\n":
            head, body_start = b"", start + 2
        else:
            end = raw.find(b"\r\n\r\n", start, start + MAX_PART_HEADERS + 4)
            if end < 0:
                raise _malformed(f"a part's headers are longer than {MAX_PART_HEADERS} bytes "
                                 "or do not end")
            head, body_start = bytes(raw[start:end]), end + 4
        nxt = raw.find(b"\r\n" + delim, body_start)
        if nxt < 0:
            raise _malformed("the closing boundary is missing")
        count += 1
        if count > MAX_PARTS:
            raise InvalidRequest(f"The form has more than {MAX_PARTS} parts.")
        _add_part(form, head, raw, body_start, nxt)
        pos = nxt + 2 + len(delim)


def _add_part(form: Form, head: bytes, raw: bytes | bytearray, start: int, end: int) -> None:
    msg = Message()
    for line in head.decode("utf-8", "replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise _malformed("a part has a malformed header line")
        msg[name.strip()] = value.strip()
    if (msg.get_content_disposition() or "") != "form-data":
        raise _malformed("a part has no 'Content-Disposition: form-data' header")
    param = msg.get_param("name", header="content-disposition")
    if not isinstance(param, str) or not param:
        raise _malformed("a part has no field name")
    name = param
    filename = msg.get_filename()
    if filename is not None:
        ctype = msg.get("content-type", "application/octet-stream")
        form.files.append(FormFile(name, filename, ctype, bytes(raw[start:end])))
        return
    if end - start > MAX_FIELD:
        raise InvalidRequest(f"The form field '{name[:60]}' is longer than {MAX_FIELD} bytes.",
                             param=name[:60])
    if name in form.fields:
        raise InvalidRequest(f"The form field '{name[:60]}' is given more than once.",
                             param=name[:60])
    try:
        form.fields[name] = bytes(raw[start:end]).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(f"The form field '{name[:60]}' is not UTF-8 text.",
                             param=name[:60]) from None


def _malformed(why: str) -> InvalidRequest:
    return InvalidRequest(f"The multipart/form-data body is malformed: {why}.")
