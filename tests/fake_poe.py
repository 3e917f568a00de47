"""A scriptable fake Poe server for offline tests (see /work/shared/poe-protocol.md §6).

Usage::

    fake = FakePoe()
    server = await aiohttp_server(fake.make_app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    fake.script("GPT-4o", [text("Hel"), text("lo"), done()])

or simply ``fake = await start_fake_poe(aiohttp_server)``.

API in short (see the docstrings for details):

* Steps: ``text(s, index=None)``, ``replace(s, index=None)``, ``meta(**fields)``,
  ``suggested(s)``, ``file_event(url, name, content_type, inline_ref=None)``,
  ``json_event(obj)``, ``data_event(metadata)``, ``ping()``, ``unknown(name="foo", data={})``,
  ``error(text, allow_retry=True, error_type=None, **extra)``, ``done()``,
  ``event(name, data=None, *, raw_data=None)`` (any event; ``raw_data`` = verbatim data line),
  ``comment(s="ping")``, ``raw(bytes)``, ``sleep(seconds)``, ``hang(before_headers=False)``,
  ``wait(asyncio_event)`` (nothing more until the event is set),
  ``close()``, ``reset()``, ``http_error(status, body, content_type="application/json",
  headers=None)`` (first and only step).
* ``fake.script(bot | None, steps | callable, *, line_ending="\\n", split=None | int | "bytes" |
  "random", seed=0, coalesce=False, split_delay=0.001)``; ``fake.script_scenario(bot, name)``;
  ``fake.unscript(bot)``.
* Recording: ``fake.requests`` / ``fake.last`` / ``fake.queries`` (``Received``),
  ``fake.uploads`` (``Upload``), ``fake.models_hits``, ``fake.balance_hits``.
  ``Received.finished`` is set when the fake played the script to its end (a scripted
  ``close()``/``reset()``/``http_error`` counts, as do 4xx answers); ``Received.cancelled``
  when the client left (or the handler was cancelled) before that. ``await rec.wait_cancelled(t)``
  / ``await fake.wait_cancelled(t)`` return True/False.
* Knobs: ``keys``, ``auth_failure`` ("http" | "event"), ``strict`` (default True: also 400 on an
  empty ``query``, a non-string ``version`` or ``content``, a ``content_type`` other than
  text/markdown / text/plain), ``upload_failure``, ``upload_delay``, ``models``,
  ``models_failure``, ``models_delay``, ``balance``, ``points_history`` (entries served by
  ``GET /usage/points_history``, newest first, paged by ``limit`` and ``starting_after``).
* On server shutdown all in-flight handlers (hang/sleep) are cancelled, so a test teardown
  never waits for them.

Bot names are matched case-insensitively. Which script a ``POST /bot/<name>`` plays:
the bot's own script (``fake.script(name, ...)`` / ``fake.script_scenario(name, ...)``),
else ``SCENARIOS[x]`` when the name is ``scenario-<x>`` (an unknown ``<x>`` gives a
404 JSON error so typos are visible), else the default script (``fake.script(None, ...)``),
else the "basic" scenario.

Scenarios and their final answer
================================

"Final answer" = what a correct client shows for response index 0: the concatenation of
``text`` data, where ``replace_response`` throws away everything before it, ``meta``,
``suggested_reply``, ``file``, ``data``, ``ping`` and unknown events contribute nothing,
events with ``"index": 1`` are ignored, and nothing after ``done`` counts. The same
strings are in the dict ``ANSWERS`` (scenario name -> final answer).

Normal output (all end with ``done`` unless noted):

* ``basic``                   -> ``"Hello, world!"`` (meta first, 3 text events)
* ``no-meta``                 -> ``"No meta here."``
* ``meta-not-first``          -> ``"Meta ignored."`` (a non-first meta with content_type
  text/plain and linkify false comes between the texts; it must be ignored)
* ``replace``                 -> ``"Final answer."`` (text "Draft", replace "Final", text " answer.")
* ``multi-replace``           -> ``"Three times replaced."``
* ``suggested``               -> ``"Pick one."``; suggested replies "Tell me more",
  "Another question" (meta has suggested_replies true)
* ``thinking``                -> ``"*Thinking...*\\n\\n> step one\\n> step two\\n\\nThe answer is 42."``
  (reasoning "step one\\nstep two", answer proper "The answer is 42."), streamed in 5 pieces
* ``media``                   -> ``"Here is a cat:\\n\\n![cat.png][ref1]"``; one file event
  url ``MEDIA_URL`` name "cat.png", content_type "image/png", inline_ref "ref1" (before the text)
* ``media-replace``           -> ``"![cat.png][ref1]"`` (text "Generating image...", file event
  as in ``media``, then replace_response with the Markdown)
* ``media-no-ref``            -> ``"Your file is ready."``; file event url ``PDF_URL``,
  "report.pdf", "application/pdf", inline_ref null
* ``tools-native``            -> request dependent (callable):
  with ``tools`` and no tool results: ``json`` events carrying chat.completion.chunk tool-call
  deltas for ONE call: id "call_fake_1", name = the first tool's function name, arguments
  ``{"location": "Paris"}`` (sent as two fragments), then a ``finish_reason: "tool_calls"``
  chunk, a ``choices: []`` usage chunk (prompt 10, completion 5, total 15), done.
  With ``tool_results`` (or any ``role: "tool"`` message in ``query``):
  ``"Tool result: " + <content of the last tool result>``.
  With neither: ``"No tools were offered."``
* ``tools-parallel``          -> like ``tools-native`` but TWO calls: "call_fake_1"
  (first tool, ``{"location": "Paris"}``) and "call_fake_2" (second tool, or the first again,
  ``{"location": "Tokyo"}``), fragments interleaved. With results:
  ``"Tool results: " + " | ".join(<contents in order>)``. With neither: ``"No tools were offered."``
* ``tools-json-content``      -> ``"The weather is sunny."`` sent as ``json`` chunks with
  ``delta.content`` (then a ``finish_reason: "stop"`` chunk), no ``text`` events
* ``tools-ignored``           -> ``"I will answer without tools."`` (plain text even if tools sent)
* ``data-ping-unknown-index`` -> ``"Visible text."`` (also: ping events, a data event with
  metadata "d-meta-123", an unknown ``foo`` event, and a text ``"Other choice"`` with index 1)
* ``empty-text``              -> ``"Empty events."`` (empty text events first, between and last)
* ``unicode``                 -> ``UNICODE_ANSWER`` =
  ``'Emoji 😀🎉, CJK 漢字かな한글, RTL שלום مرحبا, sep\\u2028line, quote "q" and\\nnewline. 😀é'``
  (the last piece is a raw event written with ``\\ud83d\\ude00\\u00e9`` JSON escapes)
* ``long-output``             -> ``LONG_ANSWER`` = ``"".join(f"{i:09d} " for i in range(10000))``
  (100,000 characters in 10,000 text events)
* ``huge-line``               -> ``"0123456789" * 25000 + " end"`` (first data line ~244 KiB)

Errors (text = partial answer before the error; each error event then ``done`` unless noted):

* ``error-first``             -> ``""``; error ``{"allow_retry": true, "text": "Internal server error"}``
* ``error-first-no-done``     -> same error, then a clean close without done
* ``error-no-retry-user_message_too_long`` / ``-insufficient_fund`` / ``-user_caused_error`` /
  ``-privacy_authorization_error`` -> ``""``; error with allow_retry false, that error_type and
  the text in ``ERROR_TYPE_TEXTS``
* ``rate-limit-text``         -> ``""``; ``RATE_LIMIT_TEXT`` (allow_retry true)
* ``no-points-text``          -> ``""``; ``NO_POINTS_TEXT`` (allow_retry false)
* ``no-points-text-alt``      -> ``""``; ``NO_POINTS_TEXT_ALT`` (allow_retry false)
* ``access-denied-text``      -> ``""``; "Access denied" (allow_retry true)
* ``invalid-token-text``      -> ``""``; "Invalid token" (allow_retry false)
* ``unknown-bot-text``        -> ``""``; "Bot does not exist" (allow_retry false)
* ``internal-error-id``       -> ``""``; ``INTERNAL_ERROR_ID_TEXT``
* ``error-mid``               -> ``"Partial answer"`` then error "Internal server error", done
* ``error-mid-no-done``       -> ``"Partial answer"`` then the error, clean close
* ``http-<status>`` for 400 401 402 403 404 408 413 429 500 502 503 504 529 -> that status,
  ``application/json`` body ``{"error": {"message": ..., "type": ...}}`` (``HTTP_ERRORS``)
* ``http-500-text``           -> 500 ``text/plain`` "Internal Server Error"
* ``http-520-html`` / ``http-524-html`` -> Cloudflare-style HTML page
* ``http-429-retry-after``    -> 429 JSON rate_limit_error with ``Retry-After: 2``
* ``json-200``                -> 200 ``application/json``
  ``{"error": {"message": "Something went wrong", "type": "server_error"}}`` (not SSE)

Framing and transport (all -> ``"Hello, world!"`` with ``done`` unless noted):

* ``crlf`` (CRLF line endings), ``cr-only`` (CR only), ``mixed-endings`` (LF/CRLF/CR mixed)
* ``comments`` (``: ping``, ``: ping - <datetime>``, bare ``:``, a comment inside an event)
* ``field-syntax`` (``data:`` / ``event:`` without space, ``data:`` with two spaces,
  ``id:``, ``retry:``-only block, a field line without colon)
* ``multiline-data`` (JSON split over several ``data:`` lines)
* ``split-random`` (random write sizes, seeded), ``split-crlf`` (writes split between
  ``\\r`` and ``\\n``), ``coalesced`` (all events in one write)
* ``split-utf8``              -> ``"Héllo, wörld! 漢字 😀"`` (one byte per write)
* ``slow-drip``               -> one byte per write every 5 ms with two 0.2 s pauses after
  comment pings (about 1 s total)
* ``stall``                   -> SSE headers, then nothing, connection kept open
* ``stall-before-headers``    -> no bytes at all, connection kept open
* ``stall-mid``               -> text ``"Hello"``, then nothing, connection kept open
* ``close-no-done``           -> ``"Hello, world!"`` then a clean close without done
* ``no-trailing-blank-line``  -> ``"Hello, world!"``; the final ``done`` event is followed
  by a single newline and EOF (a strict SSE parser drops it: the stream then looks like it
  ended without done)
* ``reset-mid-event``         -> ``"Hello, "`` then half an event, then TCP abort
  (incomplete chunked body)
* ``bytes-after-done``        -> ``"Hello, world!"``; after done come a text " IGNORED",
  a garbage line and another done (all must be ignored)
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import mimetypes
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import BodyPartReader, web
from multidict import CIMultiDict

__all__ = [
    "ANSWERS",
    "ERROR_TYPES",
    "ERROR_TYPE_TEXTS",
    "FAKE_POE_KEY",
    "HTTP_ERRORS",
    "INTERNAL_ERROR_ID_TEXT",
    "LONG_ANSWER",
    "MEDIA_URL",
    "NO_POINTS_TEXT",
    "NO_POINTS_TEXT_ALT",
    "PDF_URL",
    "RATE_LIMIT_TEXT",
    "SCENARIOS",
    "SSE_HEADERS",
    "UNICODE_ANSWER",
    "Close",
    "Comment",
    "Event",
    "FakePoe",
    "Hang",
    "HttpError",
    "Raw",
    "Received",
    "Reset",
    "Script",
    "Sleep",
    "Step",
    "Upload",
    "Wait",
    "close",
    "comment",
    "data_event",
    "default_models",
    "done",
    "error",
    "event",
    "file_event",
    "hang",
    "http_error",
    "json_event",
    "meta",
    "ping",
    "raw",
    "replace",
    "reset",
    "sleep",
    "start_fake_poe",
    "suggested",
    "text",
    "unknown",
    "wait",
]

SSE_HEADERS: Mapping[str, str] = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

ALLOWED_ROLES = frozenset({"system", "user", "bot", "tool"})
ALLOWED_CONTENT_TYPES = frozenset({"text/markdown", "text/plain"})
SIDE_REQUEST_TYPES = frozenset({"report_error", "report_feedback", "report_reaction", "settings"})
RESERVED_BOT_PATHS = ("fetch_settings", "update_settings", "cost")

# --------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------


class Step:
    """Base class of everything a script is made of."""


@dataclass(frozen=True)
class Event(Step):
    """One SSE event: ``event: <name>`` + ``data: <json>`` + blank line."""

    name: str
    data: Any = field(default_factory=dict)
    raw_data: str | None = None  # if set, written verbatim instead of json.dumps(data)

    def render(self, line_ending: str) -> bytes:
        payload = self.raw_data if self.raw_data is not None else _dumps(self.data)
        le = line_ending
        return f"event: {self.name}{le}data: {payload}{le}{le}".encode()


@dataclass(frozen=True)
class Comment(Step):
    text: str = "ping"

    def render(self, line_ending: str) -> bytes:
        line = f": {self.text}" if self.text else ":"
        return f"{line}{line_ending}{line_ending}".encode()


@dataclass(frozen=True)
class Raw(Step):
    data: bytes

    def render(self, line_ending: str) -> bytes:
        return self.data


@dataclass(frozen=True)
class Sleep(Step):
    seconds: float


@dataclass(frozen=True)
class Hang(Step):
    before_headers: bool = False


@dataclass(frozen=True)
class Wait(Step):
    event: asyncio.Event


@dataclass(frozen=True)
class Close(Step):
    pass


@dataclass(frozen=True)
class Reset(Step):
    pass


@dataclass(frozen=True)
class HttpError(Step):
    status: int
    body: str | bytes | dict[str, Any] | list[Any]
    content_type: str = "application/json"
    headers: Mapping[str, str] | None = None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def event(name: str, data: Any = None, *, raw_data: str | None = None) -> Event:
    """Any event; ``raw_data`` writes the data line verbatim (e.g. invalid JSON)."""
    return Event(name, {} if data is None else data, raw_data)


def text(s: str, index: int | None = None) -> Event:
    data: dict[str, Any] = {"text": s}
    if index is not None:
        data["index"] = index
    return Event("text", data)


def replace(s: str, index: int | None = None) -> Event:
    data: dict[str, Any] = {"text": s}
    if index is not None:
        data["index"] = index
    return Event("replace_response", data)


def meta(**fields: Any) -> Event:
    data: dict[str, Any] = {
        "content_type": "text/markdown",
        "suggested_replies": False,
        "linkify": True,
        "refetch_settings": False,
    }
    data.update(fields)
    return Event("meta", data)


def suggested(s: str) -> Event:
    return Event("suggested_reply", {"text": s})


def file_event(
    url: str, name: str, content_type: str, inline_ref: str | None = None, index: int | None = None
) -> Event:
    data: dict[str, Any] = {
        "url": url,
        "content_type": content_type,
        "name": name,
        "inline_ref": inline_ref,
    }
    if index is not None:
        data["index"] = index
    return Event("file", data)


def json_event(obj: Any) -> Event:
    return Event("json", obj)


def data_event(metadata: str) -> Event:
    return Event("data", {"metadata": metadata})


def ping() -> Event:
    return Event("ping", {})


def unknown(name: str = "foo", data: Any = None) -> Event:
    return Event(name, {} if data is None else data)


def error(
    text: str, allow_retry: bool = True, error_type: str | None = None, **extra: Any
) -> Event:
    data: dict[str, Any] = {"allow_retry": allow_retry, "text": text}
    if error_type is not None:
        data["error_type"] = error_type
    data.update(extra)
    return Event("error", data)


def done() -> Event:
    return Event("done", {})


def comment(s: str = "ping") -> Comment:
    """``: <s>`` line plus a blank line (``comment("")`` gives a bare ``:``)."""
    return Comment(s)


def raw(data: bytes | str) -> Raw:
    """Exact bytes, written as-is (a str is UTF-8 encoded)."""
    return Raw(data.encode() if isinstance(data, str) else bytes(data))


def sleep(seconds: float) -> Sleep:
    return Sleep(seconds)


def hang(before_headers: bool = False) -> Hang:
    """Write nothing more; keep the connection open until the client goes away.

    As the first step with ``before_headers=True`` not even the response headers are sent.
    """
    return Hang(before_headers)


def wait(event: asyncio.Event) -> Wait:
    """Write nothing more until ``event`` is set (or the client goes away), then go on."""
    return Wait(event)


def close() -> Close:
    """Finish the response cleanly here (later steps are not played)."""
    return Close()


def reset() -> Reset:
    """Abort the TCP connection (the client sees an incomplete chunked body)."""
    return Reset()


def http_error(
    status: int,
    body: str | bytes | dict[str, Any] | list[Any],
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> HttpError:
    """As the first and only step: a plain HTTP answer instead of SSE."""
    return HttpError(status, body, content_type, headers)


# --------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------


@dataclass(eq=False)
class Received:
    """One request to ``/bot/...`` as the fake saw it."""

    bot: str
    path: str
    method: str
    headers: CIMultiDict[str]
    raw_body: bytes
    body: dict[str, Any] | None
    api_key: str | None
    started_at: float
    started: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled_at: float | None = None
    finished_at: float | None = None
    status: int | None = None  # HTTP status the fake answered with
    was_reset: bool = False  # the script ended with reset()
    is_bot: bool = True  # False for /bot/fetch_settings|update_settings|cost/... (answered 404)
    peer: Any = None  # the client's (host, port): the same for requests on one connection

    # -- convenience ------------------------------------------------------------------
    @property
    def type(self) -> str | None:
        return self.body.get("type") if self.body else None

    @property
    def query(self) -> list[dict[str, Any]]:
        q = self.body.get("query") if self.body else None
        return q if isinstance(q, list) else []

    @property
    def last_user_message(self) -> dict[str, Any] | None:
        for msg in reversed(self.query):
            if isinstance(msg, dict) and msg.get("role") == "user":
                return msg
        return None

    @property
    def tools(self) -> list[Any] | None:
        return self.body.get("tools") if self.body else None

    @property
    def tool_results(self) -> list[Any] | None:
        return self.body.get("tool_results") if self.body else None

    # -- waiting ----------------------------------------------------------------------
    async def wait_cancelled(self, timeout: float = 1.0) -> bool:  # noqa: ASYNC109
        """True once the client hung up before the script finished; False on timeout."""
        return await _wait_event(self.cancelled, timeout)

    async def wait_finished(self, timeout: float = 1.0) -> bool:  # noqa: ASYNC109
        return await _wait_event(self.finished, timeout)

    async def wait_started(self, timeout: float = 1.0) -> bool:  # noqa: ASYNC109
        return await _wait_event(self.started, timeout)

    def _mark_cancelled(self) -> None:
        if self.finished.is_set() or self.cancelled.is_set():
            return
        self.cancelled_at = asyncio.get_running_loop().time()
        self.cancelled.set()

    def _mark_finished(self) -> None:
        if self.finished.is_set() or self.cancelled.is_set():
            return
        self.finished_at = asyncio.get_running_loop().time()
        self.finished.set()


@dataclass(eq=False)
class Upload:
    """One upload to ``/poe_api/file_upload_3RD_PARTY_POST``."""

    kind: str  # "file" | "url"
    filename: str
    content_type: str
    api_key: str | None
    data: bytes | None = None
    url: str | None = None
    id: str = ""
    attachment_url: str = ""
    status: int = 200
    fields: dict[str, str] = field(default_factory=dict)  # other (ignored) form fields


async def _wait_event(ev: asyncio.Event, timeout: float) -> bool:  # noqa: ASYNC109
    try:
        await asyncio.wait_for(ev.wait(), timeout)
    except TimeoutError:
        return False
    return True


# --------------------------------------------------------------------------------------
# Scripts
# --------------------------------------------------------------------------------------

StepsLike = Iterable[Step] | Callable[[Received], Iterable[Step] | Awaitable[Iterable[Step]]]


@dataclass
class Script:
    steps: StepsLike
    line_ending: str = "\n"
    split: int | str | None = None  # None | N | "bytes" | "random"
    seed: int = 0
    coalesce: bool = False
    split_delay: float = 0.001

    def __post_init__(self) -> None:
        if self.line_ending not in ("\n", "\r\n", "\r"):
            raise ValueError(f"bad line_ending {self.line_ending!r}")
        if not (
            self.split is None
            or self.split in ("bytes", "random")
            or (isinstance(self.split, int) and not isinstance(self.split, bool) and self.split > 0)
        ):
            raise ValueError(f"bad split {self.split!r}")
        if not callable(self.steps):
            self.steps = list(self.steps)
            _check_steps(self.steps)


def _check_steps(steps: list[Step]) -> None:
    for i, step in enumerate(steps):
        if not isinstance(step, Step):
            raise TypeError(f"step {i} is not a Step: {step!r}")
        if isinstance(step, HttpError) and i != 0:
            raise ValueError("http_error() must be the first (and only) step")
        if isinstance(step, Hang) and step.before_headers and i != 0:
            raise ValueError("hang(before_headers=True) must be the first step")


def _pieces(data: bytes, split: int | str | None, rng: random.Random) -> list[bytes]:
    if split is None or not data:
        return [data]
    if split == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    if split == "random":
        out: list[bytes] = []
        i = 0
        while i < len(data):
            n = rng.randint(1, 12)
            out.append(data[i : i + n])
            i += n
        return out
    assert isinstance(split, int)
    return [data[i : i + split] for i in range(0, len(data), split)]


class _ClientGone(ConnectionResetError):
    pass


async def _pause(request: web.BaseRequest, seconds: float) -> None:
    """Sleep, but notice a client that went away (even without handler cancellation)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while True:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise _ClientGone("client went away")
        remaining = end - loop.time()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, 0.02))


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


def default_models() -> list[dict[str, Any]]:
    """A fresh list of realistic ``/v1/models`` entries (poe-protocol §4 shape)."""

    def model(
        id_: str,
        display: str,
        owned_by: str,
        created: int,
        inp: list[str],
        out: list[str],
        pricing: dict[str, Any] | None,
        parameters: list[dict[str, Any]],
        *,
        features: list[str] | None = None,
        endpoints: list[str] | None = None,
        context: int | None = None,
        max_out: int | None = None,
        reasoning: dict[str, Any] | None = None,
        description: str = "",
    ) -> dict[str, Any]:
        return {
            "id": id_,
            "object": "model",
            "created": created,
            "description": description or f"{display} on Poe.",
            "owned_by": owned_by,
            "root": id_,
            "architecture": {
                "input_modalities": inp,
                "output_modalities": out,
                "modality": f"{','.join(inp)}->{','.join(out)}",
            },
            "supported_features": features or [],
            "supported_endpoints": endpoints or [],
            "pricing": pricing,
            "context_window": (
                {"context_length": context, "max_output_tokens": max_out} if context else None
            ),
            "context_length": context,
            "metadata": {
                "display_name": display,
                "image": {
                    "url": f"https://qph.cf2.poecdn.net/main-thumb-{id_}.png",
                    "alt": display,
                    "width": 200,
                    "height": 200,
                },
                "url": f"https://poe.com/{display}",
            },
            "reasoning": reasoning,
            "parameters": parameters,
        }

    chat_eps = ["/v1/chat/completions", "/v1/responses"]
    return [
        model(
            "gpt-4o",
            "GPT-4o",
            "OpenAI",
            1715641234567,
            ["text", "image"],
            ["text"],
            {
                "prompt": "0.0000022",
                "completion": "0.0000088",
                "image": None,
                "request": None,
                "input_cache_read": "0.0000011",
                "input_cache_write": None,
            },
            [],
            features=["tools"],
            endpoints=chat_eps,
            context=128000,
            max_out=16384,
        ),
        model(
            "gpt-5.2",
            "GPT-5.2",
            "OpenAI",
            1765400000000,
            ["text", "image"],
            ["text"],
            {
                "prompt": "0.0000016",
                "completion": "0.000013",
                "image": None,
                "request": None,
                "input_cache_read": "0.00000016",
                "input_cache_write": None,
            },
            [
                {
                    "name": "reasoning_effort",
                    "schema": {
                        "type": "string",
                        "enum": ["none", "low", "medium", "high", "xhigh"],
                    },
                    "default_value": "medium",
                    "description": "How hard the model thinks.",
                },
                {
                    "name": "verbosity",
                    "schema": {"type": "string", "enum": ["low", "medium", "high"]},
                    "default_value": "medium",
                    "description": "How long the answer is.",
                },
                {
                    "name": "web_search",
                    "schema": {"type": "boolean"},
                    "default_value": False,
                    "description": "Let the model search the web.",
                },
            ],
            features=["web_search", "tools"],
            endpoints=chat_eps,
            context=400000,
            max_out=128000,
            reasoning={"budget": None, "required": False, "supports_reasoning_effort": True},
        ),
        model(
            "claude-sonnet-4.5",
            "Claude-Sonnet-4.5",
            "Anthropic",
            1758868894776,
            ["text", "image"],
            ["text"],
            {
                "prompt": "0.0000026",
                "completion": "0.000013",
                "image": None,
                "request": None,
                "input_cache_read": "0.00000026",
                "input_cache_write": "0.0000032",
            },
            [
                {
                    "name": "thinking_budget",
                    "schema": {"type": "number", "minimum": 0, "maximum": 31999},
                    "default_value": 0,
                    "description": "The maximum number of tokens to spend on thinking.",
                },
                {
                    "name": "web_search",
                    "schema": {"type": "boolean"},
                    "default_value": False,
                    "description": "Let the model search the web.",
                },
            ],
            features=["web_search", "tools"],
            endpoints=["/v1/messages", "/v1/responses", "/v1/chat/completions"],
            context=983040,
            max_out=32768,
            reasoning={
                "budget": {"max_tokens": 31999, "min_tokens": 0},
                "required": False,
                "supports_reasoning_effort": False,
            },
        ),
        model(
            "gemini-2.5-flash",
            "Gemini-2.5-Flash",
            "Google",
            1750291200000,
            ["text", "image", "video", "audio"],
            ["text"],
            {
                "prompt": "0.00000021",
                "completion": "0.0000018",
                "image": None,
                "request": None,
                "input_cache_read": None,
                "input_cache_write": None,
            },
            [
                {
                    "name": "thinking_budget",
                    "schema": {"type": "number", "minimum": 0, "maximum": 24576},
                    "default_value": 0,
                    "description": "Thinking tokens.",
                }
            ],
            features=["tools"],
            endpoints=chat_eps,
            context=1048576,
            max_out=65536,
            reasoning={
                "budget": {"max_tokens": 24576, "min_tokens": 0},
                "required": False,
                "supports_reasoning_effort": False,
            },
        ),
        model(
            "nano-banana",
            "Nano-Banana",
            "Google",
            1756166400000,
            ["text", "image"],
            ["image", "text"],
            None,
            [
                {
                    "name": "aspect_ratio",
                    "schema": {
                        "type": "string",
                        "enum": ["1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9"],
                    },
                    "default_value": "1:1",
                    "description": "Aspect ratio of the image.",
                },
                {
                    "name": "image_only",
                    "schema": {"type": "boolean"},
                    "default_value": False,
                    "description": "Return only the image.",
                },
            ],
            endpoints=["/v1/chat/completions", "/v1/images"],
        ),
        model(
            "flux-schnell",
            "FLUX-schnell",
            "fal",
            1722470400000,
            ["text"],
            ["image"],
            None,
            [
                {
                    "name": "aspect",
                    "schema": {"type": "string", "enum": ["1:1", "16:9", "9:16"]},
                    "default_value": "1:1",
                    "description": "Aspect ratio.",
                }
            ],
        ),
        model(
            "assistant",
            "Assistant",
            "Poe",
            1689984000000,
            ["text", "image"],
            ["text"],
            None,
            [],
            endpoints=["/v1/chat/completions"],
            context=128000,
            max_out=16384,
        ),
    ]


# --------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------


def _err_body(message: str, type_: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_}}


class FakePoe:
    """Scriptable fake of api.poe.com (bot protocol, upload, models, balance)."""

    def __init__(self) -> None:
        self.base_url: str = ""
        self.requests: list[Received] = []
        self.uploads: list[Upload] = []
        self.models: list[dict[str, Any]] = default_models()
        self.models_hits: int = 0
        self.models_failure: int | None = None
        self.models_delay: float = 0.0
        self.keys: set[str] | None = None
        self.auth_failure: str = "http"  # "http" | "event"
        self.strict: bool = True  # extra query checks (content_type, non-empty query, ...)
        self.upload_failure: tuple[int, str | bytes | dict[str, Any]] | None = None
        self.upload_delay: float = 0.0
        self.balance: int = 1000
        self.balance_hits: int = 0
        self.points_history: list[dict[str, Any]] = []
        self._scripts: dict[str, Script] = {}
        self._default: Script | None = None
        self._files: dict[str, tuple[str, str, bytes]] = {}  # id -> (name, content_type, data)
        self._upload_counter = 0

    # -- scripting --------------------------------------------------------------------
    def script(
        self,
        bot: str | None,
        steps: StepsLike,
        *,
        line_ending: str = "\n",
        split: int | str | None = None,
        seed: int = 0,
        coalesce: bool = False,
        split_delay: float = 0.001,
    ) -> Script:
        """Set what ``POST /bot/<bot>`` plays (``bot=None``: the default for all bots)."""
        s = Script(steps, line_ending, split, seed, coalesce, split_delay)
        if bot is None:
            self._default = s
        else:
            self._scripts[bot.lower()] = s
        return s

    def script_scenario(self, bot: str | None, name: str) -> Script:
        """Install ``SCENARIOS[name]`` for ``bot`` (or as the default with ``None``)."""
        return self.script(bot, **_scenario_kwargs(name))

    def unscript(self, bot: str | None) -> None:
        if bot is None:
            self._default = None
        else:
            self._scripts.pop(bot.lower(), None)

    def _script_for(self, bot: str) -> Script | None:
        s = self._scripts.get(bot.lower())
        if s is not None:
            return s
        if bot.lower().startswith("scenario-"):
            name = bot[len("scenario-") :]
            key = _scenario_lookup(name)
            if key is None:
                return None
            return Script(**_scenario_kwargs(key))
        return self._default or Script(**_scenario_kwargs("basic"))

    # -- state helpers ----------------------------------------------------------------
    @property
    def last(self) -> Received | None:
        return self.requests[-1] if self.requests else None

    @property
    def queries(self) -> list[Received]:
        """Only the ``type: "query"`` requests."""
        return [r for r in self.requests if r.is_bot and r.type == "query"]

    async def wait_for_requests(self, count: int = 1, timeout: float = 1.0) -> bool:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while len(self.requests) < count:
            if loop.time() >= end:
                return False
            await asyncio.sleep(0.005)
        return True

    async def wait_cancelled(self, timeout: float = 1.0, index: int = -1) -> bool:  # noqa: ASYNC109
        """Wait until request ``index`` (default: the last one) was cancelled by the client."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        if not await self.wait_for_requests(1, timeout):
            return False
        return await self.requests[index].wait_cancelled(max(0.0, timeout - (loop.time() - start)))

    def clear(self) -> None:
        """Forget recorded requests and uploads (scripts and knobs stay)."""
        self.requests.clear()
        self.uploads.clear()
        self.models_hits = 0
        self.balance_hits = 0

    # -- app --------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[_track_tasks])
        app[FAKE_POE_KEY] = self
        app[_ACTIVE_KEY] = set()
        app.on_shutdown.append(_cancel_active)
        for name in RESERVED_BOT_PATHS:
            app.router.add_post(f"/bot/{name}", self._reserved)
            app.router.add_post(f"/bot/{name}/{{tail:.*}}", self._reserved)
        app.router.add_post("/bot/{bot}", self._bot)
        app.router.add_post("/poe_api/file_upload_3RD_PARTY_POST", self._upload)
        app.router.add_get("/files/{id}/{name}", self._file)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/usage/current_balance", self._balance)
        app.router.add_get("/usage/points_history", self._points_history)
        return app

    def _base(self, request: web.Request) -> str:
        return self.base_url or f"{request.scheme}://{request.host}"

    # -- /bot -------------------------------------------------------------------------
    async def _record(self, request: web.Request, bot: str) -> Received:
        raw_body = await request.read()
        body: dict[str, Any] | None = None
        try:
            parsed = json.loads(raw_body) if raw_body else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if isinstance(parsed, dict):
            body = parsed
        auth = request.headers.get("Authorization")
        api_key = None
        if auth and auth.startswith("Bearer "):
            api_key = auth[len("Bearer ") :].strip() or None
        rec = Received(
            bot=bot,
            path=request.path,
            method=request.method,
            headers=CIMultiDict(request.headers),
            raw_body=raw_body,
            body=body,
            api_key=api_key,
            started_at=asyncio.get_running_loop().time(),
            peer=request.transport.get_extra_info("peername") if request.transport else None,
        )
        self.requests.append(rec)
        rec.started.set()
        return rec

    def _json_answer(self, rec: Received, status: int, body: Any) -> web.Response:
        rec.status = status
        rec._mark_finished()
        return web.json_response(body, status=status)

    async def _reserved(self, request: web.Request) -> web.StreamResponse:
        bot = request.path.split("/")[2]
        rec = await self._record(request, bot)
        rec.is_bot = False
        return self._json_answer(
            rec, 404, _err_body(f"fake_poe: /bot/{bot}/... is not a bot", "not_found_error")
        )

    async def _bot(self, request: web.Request) -> web.StreamResponse:
        bot = request.match_info["bot"]
        rec = await self._record(request, bot)
        try:
            return await self._bot_inner(request, rec)
        except asyncio.CancelledError:
            rec._mark_cancelled()
            raise
        except ConnectionResetError:
            rec._mark_cancelled()
            raise

    async def _bot_inner(self, request: web.Request, rec: Received) -> web.StreamResponse:
        if request.headers.get("Authorization") is None or rec.api_key is None:
            return self._json_answer(
                rec,
                401,
                _err_body("Missing or malformed Authorization header", "authentication_error"),
            )
        if self.keys is not None and rec.api_key not in self.keys:
            if self.auth_failure == "event":
                steps = [error("Invalid token", allow_retry=False), done()]
                return await self._play(request, rec, Script(steps))
            return self._json_answer(rec, 401, _err_body("Invalid API key", "authentication_error"))
        body = rec.body
        if body is None:
            return self._json_answer(
                rec, 400, _err_body("Request body must be a JSON object", "invalid_request_error")
            )
        kind = body.get("type")
        if kind in SIDE_REQUEST_TYPES:
            return self._json_answer(rec, 200, {})
        if kind != "query":
            return self._json_answer(
                rec, 400, _err_body(f"Unknown request type: {kind!r}", "invalid_request_error")
            )
        problem = self._check_query(body)
        if problem is not None:
            return self._json_answer(rec, 400, _err_body(problem, "invalid_request_error"))
        script = self._script_for(rec.bot)
        if script is None:
            return self._json_answer(
                rec,
                404,
                _err_body(f"fake_poe: unknown scenario in bot name {rec.bot!r}", "not_found_error"),
            )
        return await self._play(request, rec, script)

    def _check_query(self, body: dict[str, Any]) -> str | None:
        query = body.get("query")
        if not isinstance(query, list):
            return "Field 'query' must be a list of messages"
        for i, msg in enumerate(query):
            if not isinstance(msg, dict):
                return f"query[{i}] must be an object"
            if msg.get("role") not in ALLOWED_ROLES:
                return "Input should be 'system', 'user' or 'bot'"
        if not self.strict:
            return None
        if not query:
            return "Field 'query' must not be empty"
        if not isinstance(body.get("version"), str):
            return "Field 'version' must be a string (e.g. \"1.2\")"
        for i, msg in enumerate(query):
            if not isinstance(msg.get("content"), str):
                return f"query[{i}].content must be a string"
            ct = msg.get("content_type", "text/markdown")
            if ct not in ALLOWED_CONTENT_TYPES:
                return f"query[{i}].content_type should be 'text/markdown' or 'text/plain'"
        return None

    async def _play(
        self, request: web.Request, rec: Received, script: Script
    ) -> web.StreamResponse:
        steps_like = script.steps
        if callable(steps_like):
            produced = steps_like(rec)
            if inspect.isawaitable(produced):
                produced = await produced
            steps = list(produced)
            _check_steps(steps)
        else:
            steps = list(steps_like)

        if steps and isinstance(steps[0], HttpError):
            return self._http_error(rec, steps[0])
        if steps and isinstance(steps[0], Hang) and steps[0].before_headers:
            try:
                await _pause(request, math.inf)
            except ConnectionResetError:
                rec._mark_cancelled()
                return web.Response(status=499)

        resp = web.StreamResponse(status=200, headers=dict(SSE_HEADERS))
        rec.status = 200
        await resp.prepare(request)
        rng = random.Random(script.seed)
        pending = bytearray()

        async def write(data: bytes) -> None:
            if script.split is None:
                await resp.write(data)
                return
            for piece in _pieces(data, script.split, rng):
                await resp.write(piece)
                await asyncio.sleep(script.split_delay)

        try:
            for step in steps:
                if isinstance(step, Event | Comment | Raw):
                    data = step.render(script.line_ending)
                    if script.coalesce:
                        pending += data
                    else:
                        await write(data)
                    continue
                if pending:
                    await write(bytes(pending))
                    pending.clear()
                if isinstance(step, Sleep):
                    await _pause(request, step.seconds)
                elif isinstance(step, Hang):
                    await _pause(request, math.inf)
                elif isinstance(step, Wait):
                    while not step.event.is_set():
                        await _pause(request, 0.02)
                elif isinstance(step, Close):
                    break
                elif isinstance(step, Reset):
                    rec.was_reset = True
                    rec._mark_finished()
                    transport = request.transport
                    if transport is not None:
                        transport.abort()
                    return resp
                else:  # pragma: no cover - guarded by _check_steps
                    raise TypeError(f"unexpected step {step!r}")
            if pending:
                await write(bytes(pending))
        except ConnectionResetError:
            rec._mark_cancelled()
            return resp
        rec._mark_finished()
        try:
            await resp.write_eof()
        except ConnectionResetError:
            pass
        return resp

    def _http_error(self, rec: Received, step: HttpError) -> web.Response:
        rec.status = step.status
        rec._mark_finished()
        return _plain_response(step.status, step.body, step.content_type, step.headers)

    # -- upload -----------------------------------------------------------------------
    async def _upload(self, request: web.Request) -> web.StreamResponse:
        auth = (request.headers.get("Authorization") or "").strip()
        key = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else auth
        if not key:
            return web.Response(status=401, text="Missing API key")
        if self.keys is not None and key not in self.keys:
            return web.Response(status=401, text="Invalid API key")
        form, file_part = await _read_upload_form(request)
        others = {k: v for k, v in form.items() if k not in ("download_url", "download_filename")}
        self._upload_counter += 1
        up_id = f"up{self._upload_counter:04d}"
        if file_part is not None:
            filename, ct, data = file_part
            if not ct or ct == "application/octet-stream":
                ct = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            up = Upload("file", filename, ct, key, data=data, id=up_id, fields=others)
        else:
            url = _form_str(form.get("download_url"))
            if not url:
                return web.Response(
                    status=400, text="Expected a 'file' part or a 'download_url' field"
                )
            filename = _form_str(form.get("download_filename")) or (
                PurePosixPath(urlsplit(url).path).name or "file"
            )
            ct = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            up = Upload("url", filename, ct, key, url=url, id=up_id, fields=others)
        up.attachment_url = f"{self._base(request)}/files/{up_id}/{quote(up.filename)}"
        self.uploads.append(up)
        if self.upload_delay:
            await _pause(request, self.upload_delay)
        if self.upload_failure is not None:
            status, body = self.upload_failure
            up.status = status
            ctype = "application/json" if isinstance(body, dict | list) else "text/plain"
            return _plain_response(status, body, ctype, None)
        if up.data is not None:
            self._files[up_id] = (up.filename, up.content_type, up.data)
        return web.json_response(
            {"attachment_url": up.attachment_url, "mime_type": up.content_type}
        )

    async def _file(self, request: web.Request) -> web.StreamResponse:
        entry = self._files.get(request.match_info["id"])
        if entry is None:
            return web.Response(
                status=404, text="fake_poe: no such file (URL uploads are not fetched)"
            )
        _name, ctype, data = entry
        return web.Response(body=data, content_type=ctype)

    # -- models / balance -------------------------------------------------------------
    async def _models(self, request: web.Request) -> web.StreamResponse:
        self.models_hits += 1
        if self.models_delay:
            await _pause(request, self.models_delay)
        if self.models_failure is not None:
            return web.json_response(
                _err_body("fake_poe: models failure", "server_error"), status=self.models_failure
            )
        return web.json_response({"object": "list", "data": self.models})

    async def _balance(self, request: web.Request) -> web.StreamResponse:
        self.balance_hits += 1
        auth = request.headers.get("Authorization") or ""
        key = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
        if not key or (self.keys is not None and key not in self.keys):
            return web.json_response(
                _err_body("Invalid API key", "authentication_error"), status=401
            )
        return web.json_response({"current_point_balance": self.balance})

    async def _points_history(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization") or ""
        key = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
        if not key or (self.keys is not None and key not in self.keys):
            return web.json_response(
                _err_body("Invalid API key", "authentication_error"), status=401
            )
        limit = max(1, min(100, int(request.query.get("limit", "20"))))
        entries = self.points_history
        after = request.query.get("starting_after")
        if after is not None:
            ids = [e.get("query_id") for e in entries]
            entries = entries[ids.index(after) + 1 :] if after in ids else []
        page = entries[:limit]
        return web.json_response(
            {"has_more": len(entries) > limit, "length": len(page), "data": page}
        )


FAKE_POE_KEY: web.AppKey[FakePoe] = web.AppKey("fake_poe", FakePoe)
_ACTIVE_KEY: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("fake_poe_active", set)


@web.middleware
async def _track_tasks(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    active = request.app[_ACTIVE_KEY]
    task = asyncio.current_task()
    assert task is not None
    active.add(task)
    try:
        return await handler(request)
    finally:
        active.discard(task)


async def _cancel_active(app: web.Application) -> None:
    """On server shutdown, end handlers that hang/sleep so teardown never waits for them.

    (aiohttp would otherwise wait up to 60 s per open connection for them to finish.)
    """
    for task in list(app[_ACTIVE_KEY]):
        task.cancel()


async def _read_upload_form(
    request: web.Request,
) -> tuple[dict[str, str], tuple[str, str | None, bytes] | None]:
    """Form fields and the ``file`` part, read into memory.

    Multipart bodies are read part by part (``request.post()`` would spool file parts to
    temporary files, which leak when a client cuts an upload off).
    """
    fields: dict[str, str] = {}
    file_part: tuple[str, str | None, bytes] | None = None
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file" and part.filename is not None:
                data = await part.read(decode=True)
                file_part = (part.filename or "file", part.headers.get("Content-Type"), bytes(data))
            elif part.name:
                fields[part.name] = await part.text()
    else:
        for k, v in (await request.post()).items():
            if isinstance(v, str):
                fields[k] = v
    return fields, file_part


def _form_str(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    return None


def _plain_response(
    status: int, body: Any, content_type: str, headers: Mapping[str, str] | None
) -> web.Response:
    if isinstance(body, dict | list):
        payload = json.dumps(body, ensure_ascii=False).encode()
    elif isinstance(body, str):
        payload = body.encode()
    else:
        payload = bytes(body)
    hdrs = dict(headers or {})
    hdrs["Content-Type"] = content_type
    return web.Response(status=status, body=payload, headers=hdrs)


async def start_fake_poe(
    aiohttp_server: Any, fake: FakePoe | None = None, **kwargs: Any
) -> FakePoe:
    """Start ``fake`` (or a new FakePoe) with pytest-aiohttp's fixture and set base_url."""
    fake = fake or FakePoe()
    server = await aiohttp_server(fake.make_app(), **kwargs)
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


# --------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------

MEDIA_URL = "https://pfst.cf2.poecdn.net/base/image/fake-cat.png"
PDF_URL = "https://pfst.cf2.poecdn.net/base/application/fake-report.pdf"
RATE_LIMIT_TEXT = "You have exceeded rate limit to query bot using User API Key. Try again later."
NO_POINTS_TEXT = "This bot needs more points to answer your request."
NO_POINTS_TEXT_ALT = "You do not have enough points to message this bot."
INTERNAL_ERROR_ID_TEXT = "Internal server error (error_id: f518718b-5b4c-4b5e-9e1a-2f6b2c1d0e3a)"
ERROR_TYPES = (
    "user_message_too_long",
    "insufficient_fund",
    "user_caused_error",
    "privacy_authorization_error",
)
ERROR_TYPE_TEXTS = {
    "user_message_too_long": "Your message is too long. Please shorten it and try again.",
    "insufficient_fund": "Insufficient funds to run this bot.",
    "user_caused_error": "The request could not be processed because of invalid input.",
    "privacy_authorization_error": "This bot requires privacy authorization.",
}
HTTP_ERRORS: dict[int, tuple[str, str]] = {  # status -> (type, message)
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "Invalid API key"),
    402: (
        "insufficient_credits",
        "You've used up your points! Visit https://poe.com/api/keys to get more.",
    ),
    403: ("moderation_error", "Your request was flagged by moderation."),
    404: ("not_found_error", "Bot does not exist"),
    408: ("timeout_error", "Request timed out"),
    413: ("request_too_large", "Request too large"),
    429: ("rate_limit_error", "Rate limit exceeded"),
    500: ("provider_error", "Internal server error"),
    502: ("upstream_error", "Upstream provider error"),
    503: ("service_unavailable", "Service unavailable"),
    504: ("timeout_error", "Gateway timeout"),
    529: ("overloaded_error", "The provider is overloaded"),
}
UNICODE_PIECES = (
    "Emoji 😀🎉, ",
    "CJK 漢字かな한글, ",
    "RTL שלום مرحبا, ",
    "sep\u2028line, ",
    'quote "q" and\nnewline.',
)
UNICODE_ANSWER = "".join(UNICODE_PIECES) + " 😀é"
LONG_ANSWER = "".join(f"{i:09d} " for i in range(10000))
HUGE_TEXT = "0123456789" * 25000


def _cloudflare_html(status: int, title: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en-US">\n<head><title>api.poe.com | '
        f'{status}: {title}</title></head>\n<body>\n<div id="cf-error-details">\n'
        f'<h1>{title}</h1><span class="cf-error-code">Error code {status}</span>\n'
        "<p>Cloudflare Ray ID: <strong>8f00000000000000</strong></p>\n</div>\n</body>\n</html>\n"
    )


def _chunk(
    delta: dict[str, Any] | None, finish_reason: str | None = None, *, usage: bool = False
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1738799163,
        "model": "gpt-4o-fake",
        "service_tier": "default",
        "system_fingerprint": None,
        "choices": (
            []
            if usage
            else [
                {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}
            ]
        ),
        "usage": (
            {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15} if usage else None
        ),
    }


def _tool_results(rec: Received) -> list[str]:
    results = rec.tool_results
    if results:
        return [str(r.get("content", "")) if isinstance(r, dict) else str(r) for r in results]
    return [
        str(m.get("content", ""))
        for m in rec.query
        if isinstance(m, dict) and m.get("role") == "tool"
    ]


def _tool_names(rec: Received) -> list[str]:
    names = []
    for t in rec.tools or []:
        fn = t.get("function") if isinstance(t, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.append(fn["name"])
    return names or ["get_current_weather"]


def _tools_native(rec: Received) -> list[Step]:
    results = _tool_results(rec)
    if results:
        return [text("Tool result: "), text(results[-1]), done()]
    if not rec.tools:
        return [text("No tools were offered."), done()]
    name = _tool_names(rec)[0]
    first = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "index": 0,
                "id": "call_fake_1",
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
        ],
        "refusal": None,
    }
    return [
        json_event(_chunk(first)),
        json_event(
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location"'}}]})
        ),
        json_event(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ': "Paris"}'}}]})),
        json_event(_chunk({}, "tool_calls")),
        json_event(_chunk(None, usage=True)),
        done(),
    ]


def _tools_parallel(rec: Received) -> list[Step]:
    results = _tool_results(rec)
    if results:
        return [text("Tool results: " + " | ".join(results)), done()]
    if not rec.tools:
        return [text("No tools were offered."), done()]
    names = _tool_names(rec)
    n1, n2 = names[0], (names[1] if len(names) > 1 else names[0])

    def call(i: int, cid: str, name: str) -> dict[str, Any]:
        return {
            "index": i,
            "id": cid,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }

    def frag(i: int, s: str) -> dict[str, Any]:
        return {"tool_calls": [{"index": i, "function": {"arguments": s}}]}

    return [
        json_event(
            _chunk(
                {"role": "assistant", "content": None, "tool_calls": [call(0, "call_fake_1", n1)]}
            )
        ),
        json_event(_chunk(frag(0, '{"location"'))),
        json_event(_chunk({"tool_calls": [call(1, "call_fake_2", n2)]})),
        json_event(_chunk(frag(1, '{"location": '))),
        json_event(_chunk(frag(0, ': "Paris"}'))),
        json_event(_chunk(frag(1, '"Tokyo"}'))),
        json_event(_chunk({}, "tool_calls")),
        json_event(_chunk(None, usage=True)),
        done(),
    ]


def _basic_steps() -> list[Step]:
    return [meta(), text("Hello"), text(", "), text("world!"), done()]


def _build_scenarios() -> dict[str, list[Step] | dict[str, Any]]:
    sc: dict[str, list[Step] | dict[str, Any]] = {}
    hw = _basic_steps
    # -- normal output
    sc["basic"] = hw()
    sc["no-meta"] = [text("No meta "), text("here."), done()]
    sc["meta-not-first"] = [
        text("Meta "),
        meta(content_type="text/plain", linkify=False),
        text("ignored."),
        done(),
    ]
    sc["replace"] = [meta(), text("Draft"), replace("Final"), text(" answer."), done()]
    sc["multi-replace"] = [
        text("one"),
        replace("two"),
        text(" 2"),
        replace("three"),
        replace("Three times"),
        text(" replaced."),
        done(),
    ]
    sc["suggested"] = [
        meta(suggested_replies=True),
        text("Pick one."),
        suggested("Tell me more"),
        suggested("Another question"),
        done(),
    ]
    sc["thinking"] = [
        meta(),
        text("*Thinking...*"),
        text("\n\n> step one"),
        text("\n> step two\n\n"),
        text("The answer"),
        text(" is 42."),
        done(),
    ]
    sc["media"] = [
        meta(),
        file_event(MEDIA_URL, "cat.png", "image/png", inline_ref="ref1"),
        text("Here is a cat:\n\n"),
        text("![cat.png][ref1]"),
        done(),
    ]
    sc["media-replace"] = [
        text("Generating image..."),
        file_event(MEDIA_URL, "cat.png", "image/png", inline_ref="ref1"),
        replace("![cat.png][ref1]"),
        done(),
    ]
    sc["media-no-ref"] = [
        file_event(PDF_URL, "report.pdf", "application/pdf", inline_ref=None),
        text("Your file is ready."),
        done(),
    ]
    # -- tools
    sc["tools-native"] = {"steps": _tools_native}
    sc["tools-parallel"] = {"steps": _tools_parallel}
    sc["tools-json-content"] = [
        json_event(_chunk({"role": "assistant", "content": "The weather", "refusal": None})),
        json_event(_chunk({"content": " is sunny."})),
        json_event(_chunk({}, "stop")),
        done(),
    ]
    sc["tools-ignored"] = [text("I will answer without tools."), done()]
    # -- odd events
    sc["data-ping-unknown-index"] = [
        meta(),
        ping(),
        text("Visible", index=0),
        data_event("d-meta-123"),
        unknown("foo", {}),
        text("Other choice", index=1),
        text(" text."),
        ping(),
        done(),
    ]
    sc["empty-text"] = [text(""), text("Empty "), text(""), text("events."), text(""), done()]
    sc["unicode"] = [
        *(text(p) for p in UNICODE_PIECES),
        raw(b'event: text\ndata: {"text": " \\ud83d\\ude00\\u00e9"}\n\n'),
        done(),
    ]
    sc["long-output"] = [
        *(text(LONG_ANSWER[i : i + 10]) for i in range(0, len(LONG_ANSWER), 10)),
        done(),
    ]
    sc["huge-line"] = [meta(), text(HUGE_TEXT), text(" end"), done()]
    # -- error events
    ise = "Internal server error"
    sc["error-first"] = [error(ise, allow_retry=True), done()]
    sc["error-first-no-done"] = [error(ise, allow_retry=True), close()]
    for et in ERROR_TYPES:
        sc[f"error-no-retry-{et}"] = [
            error(ERROR_TYPE_TEXTS[et], allow_retry=False, error_type=et),
            done(),
        ]
    sc["rate-limit-text"] = [error(RATE_LIMIT_TEXT, allow_retry=True), done()]
    sc["no-points-text"] = [error(NO_POINTS_TEXT, allow_retry=False), done()]
    sc["no-points-text-alt"] = [error(NO_POINTS_TEXT_ALT, allow_retry=False), done()]
    sc["access-denied-text"] = [error("Access denied", allow_retry=True), done()]
    sc["invalid-token-text"] = [error("Invalid token", allow_retry=False), done()]
    sc["unknown-bot-text"] = [error("Bot does not exist", allow_retry=False), done()]
    sc["internal-error-id"] = [error(INTERNAL_ERROR_ID_TEXT, allow_retry=True), done()]
    sc["error-mid"] = [text("Partial "), text("answer"), error(ise, allow_retry=True), done()]
    sc["error-mid-no-done"] = [
        text("Partial "),
        text("answer"),
        error(ise, allow_retry=True),
        close(),
    ]
    # -- HTTP-level errors
    for status, (type_, message) in HTTP_ERRORS.items():
        sc[f"http-{status}"] = [http_error(status, _err_body(message, type_))]
    sc["http-500-text"] = [http_error(500, "Internal Server Error", "text/plain; charset=utf-8")]
    sc["http-520-html"] = [
        http_error(
            520,
            _cloudflare_html(520, "Web server is returning an unknown error"),
            "text/html; charset=UTF-8",
        )
    ]
    sc["http-524-html"] = [
        http_error(524, _cloudflare_html(524, "A timeout occurred"), "text/html; charset=UTF-8")
    ]
    sc["http-429-retry-after"] = [
        http_error(
            429, _err_body("Rate limit exceeded", "rate_limit_error"), headers={"Retry-After": "2"}
        )
    ]
    sc["json-200"] = [http_error(200, _err_body("Something went wrong", "server_error"))]
    # -- framing
    sc["crlf"] = {"steps": hw(), "line_ending": "\r\n"}
    sc["cr-only"] = {"steps": hw(), "line_ending": "\r"}
    sc["mixed-endings"] = [
        raw(b'event: meta\r\ndata: {"content_type": "text/markdown"}\r\n\r\n'),
        raw(b'event: text\ndata: {"text": "Hello"}\r\n\n'),
        raw(b'event: text\rdata: {"text": ", "}\r\r'),
        raw(b'event: text\r\ndata: {"text": "world!"}\n\r\n'),
        raw(b"event: done\rdata: {}\n\n"),
    ]
    sc["comments"] = [
        comment("ping"),
        meta(),
        raw(b": ping - 2025-01-01 00:00:00.000000\n\n"),
        text("Hello"),
        comment(""),
        raw(b'event: text\n: a comment inside an event\ndata: {"text": ", "}\n\n'),
        raw(b":no-space comment right before an event\n"),
        text("world!"),
        comment("ping"),
        done(),
    ]
    sc["field-syntax"] = [
        raw(b'event:meta\ndata:{"content_type": "text/markdown"}\n\n'),
        raw(b'id: 1\nevent: text\ndata:{"text": "Hello"}\n\n'),
        raw(b"retry: 1000\n\n"),
        raw(b'event:text\nid:2\ndata:  {"text": ", "}\n\n'),
        raw(b'event: text\nfoo\ndata: {"text": "world!"}\n\n'),
        raw(b"event: done\ndata: {}\n\n"),
    ]
    sc["multiline-data"] = [
        raw(b'event: text\ndata: {"text":\ndata: "Hello, "}\n\n'),
        raw(b'event: text\ndata: {\ndata: "text": "world!"\ndata: }\n\n'),
        done(),
    ]
    # -- chunking
    sc["split-random"] = {"steps": hw(), "split": "random", "seed": 0}
    sc["split-utf8"] = {"steps": [text("Héllo, wörld! 漢字 😀"), done()], "split": "bytes"}
    sc["split-crlf"] = {
        "steps": [
            raw(b"event: text\r"),
            sleep(0.01),
            raw(b'\ndata: {"text": "Hello, "}\r'),
            sleep(0.01),
            raw(b"\n\r"),
            sleep(0.01),
            raw(b'\nevent: text\r\ndata: {"text": "world!"}\r\n\r'),
            sleep(0.01),
            raw(b"\nevent: done\r\ndata: {}\r\n\r\n"),
        ],
        "line_ending": "\r\n",
    }
    sc["coalesced"] = {"steps": hw(), "coalesce": True}
    sc["slow-drip"] = {
        "steps": [
            text("Hello"),
            comment("ping"),
            sleep(0.2),
            comment("ping"),
            sleep(0.2),
            text(", world!"),
            done(),
        ],
        "split": "bytes",
        "split_delay": 0.005,
    }
    # -- stalls and endings
    sc["stall"] = [hang()]
    sc["stall-before-headers"] = [hang(before_headers=True)]
    sc["stall-mid"] = [text("Hello"), hang()]
    sc["close-no-done"] = [text("Hello, "), text("world!"), close()]
    sc["no-trailing-blank-line"] = [text("Hello, world!"), raw(b"event: done\ndata: {}\n")]
    sc["reset-mid-event"] = [text("Hello, "), raw(b'event: text\ndata: {"te'), sleep(0.05), reset()]
    sc["bytes-after-done"] = [
        text("Hello, world!"),
        done(),
        text(" IGNORED"),
        raw(b"garbage line\n\n"),
        done(),
    ]
    return sc


SCENARIOS: dict[str, list[Step] | dict[str, Any]] = _build_scenarios()

HELLO = "Hello, world!"
ANSWERS: dict[str, str] = {
    "basic": HELLO,
    "no-meta": "No meta here.",
    "meta-not-first": "Meta ignored.",
    "replace": "Final answer.",
    "multi-replace": "Three times replaced.",
    "suggested": "Pick one.",
    "thinking": "*Thinking...*\n\n> step one\n> step two\n\nThe answer is 42.",
    "media": "Here is a cat:\n\n![cat.png][ref1]",
    "media-replace": "![cat.png][ref1]",
    "media-no-ref": "Your file is ready.",
    "tools-json-content": "The weather is sunny.",
    "tools-ignored": "I will answer without tools.",
    "data-ping-unknown-index": "Visible text.",
    "empty-text": "Empty events.",
    "unicode": UNICODE_ANSWER,
    "long-output": LONG_ANSWER,
    "huge-line": HUGE_TEXT + " end",
    "error-first": "",
    "error-first-no-done": "",
    **{f"error-no-retry-{et}": "" for et in ERROR_TYPES},
    "rate-limit-text": "",
    "no-points-text": "",
    "no-points-text-alt": "",
    "access-denied-text": "",
    "invalid-token-text": "",
    "unknown-bot-text": "",
    "internal-error-id": "",
    "error-mid": "Partial answer",
    "error-mid-no-done": "Partial answer",
    "crlf": HELLO,
    "cr-only": HELLO,
    "mixed-endings": HELLO,
    "comments": HELLO,
    "field-syntax": HELLO,
    "multiline-data": HELLO,
    "split-random": HELLO,
    "split-utf8": "Héllo, wörld! 漢字 😀",
    "split-crlf": HELLO,
    "coalesced": HELLO,
    "slow-drip": HELLO,
    "close-no-done": HELLO,
    "no-trailing-blank-line": HELLO,
    "reset-mid-event": "Hello, ",
    "bytes-after-done": HELLO,
}


def _scenario_lookup(name: str) -> str | None:
    if name in SCENARIOS:
        return name
    lowered = {k.lower(): k for k in SCENARIOS}
    return lowered.get(name.lower())


def _scenario_kwargs(name: str) -> dict[str, Any]:
    key = _scenario_lookup(name)
    if key is None:
        raise KeyError(f"unknown fake Poe scenario {name!r}")
    value = SCENARIOS[key]
    if isinstance(value, dict):
        return dict(value)
    if callable(value):
        return {"steps": value}
    return {"steps": list(value)}
