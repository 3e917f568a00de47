"""The Anthropic Messages face's answers: the ``message`` object, its event stream, and
the Anthropic error envelope. Pure: no I/O.

A stream is ``message_start``, ``ping``, then per content block ``content_block_start``,
its deltas (``thinking_delta`` + ``signature_delta``, ``text_delta``,
``input_json_delta``) and ``content_block_stop``, then ``message_delta`` (stop reason,
usage) and ``message_stop``. One block is open at a time. A ``tool_use`` block goes out
whole when its call is complete (Poe may interleave the arguments of parallel calls).
After the stream has started, an error is one ``event: error`` and nothing after it.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, Final

from ..errors import ProxyError
from ..jsonlib import JSONDecodeError, dumps, loads
from .conversation import Conversation, Usage
from .items import CONTENT, REASONING, TOOL_ARGS, TOOL_CALL, Accumulator, Out
from .usage import TallyingEncoder, utf8_size

__all__ = ["KEEPALIVE", "MessagesExchange", "MessagesStream", "error_body", "error_status",
           "stop_reason"]

KEEPALIVE: Final = b'event: ping\ndata: {"type":"ping"}\n\n'

_STOP: Final = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "content_filter": "refusal"}

#: HTTP status → Anthropic error type.
_TYPES: Final = {400: "invalid_request_error", 401: "authentication_error",
                 402: "billing_error", 403: "permission_error", 404: "not_found_error",
                 405: "invalid_request_error", 408: "timeout_error",
                 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                 502: "api_error", 503: "overloaded_error", 504: "timeout_error",
                 529: "overloaded_error"}


def stop_reason(reason: str) -> str:
    return _STOP.get(reason, "end_turn")


def error_status(err: ProxyError) -> int:
    """Anthropic's status for an error: 529 for an overloaded upstream, else ours."""
    return 529 if err.status == 503 else err.status


def error_body(err: ProxyError) -> dict[str, Any]:
    kind = _TYPES.get(err.status, "api_error" if err.status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": err.message}}


def message_id() -> str:
    return f"msg_{random.getrandbits(120):030x}"


def _signature(text: str) -> str:
    # Opaque to clients; a digest of the thinking, so that it is stable and says nothing.
    return hashlib.sha256(text.encode()).hexdigest()


def _input(arguments: str) -> dict[str, Any]:
    try:
        value = loads(arguments) if arguments.strip() else {}
    except JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _usage(usage: Usage | None) -> dict[str, Any]:
    return {"input_tokens": usage.input_tokens if usage else 0,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
            "output_tokens": usage.output_tokens if usage else 0}


def _event(type: str, data: dict[str, Any]) -> bytes:
    data["type"] = type
    return b"event: " + type.encode() + b"\ndata: " + dumps(data) + b"\n\n"


def _text_delta(index: int, text: str) -> bytes:
    """A ``text_delta``: what :func:`_event` writes, byte for byte, without a dict per chunk."""
    return (b'event: content_block_delta\ndata: {"index":%d,"delta":{"type":"text_delta",'
            b'"text":%b},"type":"content_block_delta"}\n\n' % (index, dumps(text)))


class MessagesStream(TallyingEncoder):
    """One streamed message, and the count of what it renders (:class:`~.usage.TallyingEncoder`)."""

    # Slots, and containers made only when needed: every open stream has one of these.
    __slots__ = ("_calls", "_index", "_open", "_thinking", "id", "model")
    wants_usage = True

    def __init__(self, model: str) -> None:
        super().__init__()
        self.id = message_id()
        self.model = model
        self._index = -1
        self._open: int | None = None  # CONTENT or REASONING: the kind of the open block
        self._thinking: list[str] | None = None  # the open thinking block's text
        # call index → [id, name, args…], in the order the calls started
        self._calls: dict[int, list[str]] | None = None

    def start(self, prompt_tokens: int | None = None) -> bytes:
        # As Anthropic's: the prompt's tokens, when counted already (with the estimate they
        # are, before Poe's first event); message_delta has the final usage.
        usage = _usage(Usage(prompt_tokens, 0) if prompt_tokens is not None else None)
        message: dict[str, Any] = {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
        return _event("message_start", {"message": message}) + KEEPALIVE

    def encode(self, items: list[Out]) -> bytes:
        if len(items) == 1 and self._open == CONTENT and items[0][0] == CONTENT:
            # One read, one piece of text, in the open text block: the usual case.
            text = items[0][1]
            if not text:
                return b""
            # utf8_size(text), its ASCII case inline: every chunk passes here
            self._content_bytes += len(text) if text.isascii() else utf8_size(text)
            return _text_delta(self._index, text)
        self.add(items)  # counted
        frames: list[bytes] = []
        for item in items:  # adjacent text is one item already (merge_text)
            kind = item[0]
            if kind == CONTENT or kind == REASONING:
                text = item[1]
                if not text:
                    continue
                if self._open != kind:
                    self._close(frames)
                    self._flush_calls(frames)
                    self._index += 1
                    self._open = kind
                    block = ({"type": "text", "text": ""} if kind == CONTENT
                             else {"type": "thinking", "thinking": "", "signature": ""})
                    frames.append(_event("content_block_start",
                                         {"index": self._index, "content_block": block}))
                if kind == CONTENT:
                    frames.append(_text_delta(self._index, text))
                else:
                    if self._thinking is None:
                        self._thinking = []
                    self._thinking.append(text)
                    frames.append(_event("content_block_delta", {"index": self._index, "delta": {
                        "type": "thinking_delta", "thinking": text}}))
            elif kind == TOOL_CALL:
                self._close(frames)
                if self._calls is None:
                    self._calls = {}
                self._calls[item[1]] = [item[2], item[3]]
            elif kind == TOOL_ARGS:
                call = self._calls.get(item[1]) if self._calls is not None else None
                if call is not None:
                    call.append(item[2])
        return b"".join(frames)

    def _close(self, frames: list[bytes]) -> None:
        if self._open is None:
            return
        if self._open == REASONING:
            frames.append(_event("content_block_delta", {"index": self._index, "delta": {
                "type": "signature_delta",
                "signature": _signature("".join(self._thinking or ()))}}))
            self._thinking = None
        frames.append(_event("content_block_stop", {"index": self._index}))
        self._open = None

    def _flush_calls(self, frames: list[bytes]) -> None:
        if self._calls is None:
            return
        for call_id, name, *args in self._calls.values():
            self._index += 1
            frames.append(_event("content_block_start", {"index": self._index, "content_block": {
                "type": "tool_use", "id": call_id, "name": name, "input": {}}}))
            frames.append(_event("content_block_delta", {"index": self._index, "delta": {
                "type": "input_json_delta",
                "partial_json": dumps(_input("".join(args))).decode()}}))
            frames.append(_event("content_block_stop", {"index": self._index}))
        self._calls = None

    def finish(self, reason: str, usage: Usage | None) -> bytes:
        frames: list[bytes] = []
        self._close(frames)
        self._flush_calls(frames)
        frames.append(_event("message_delta", {
            "delta": {"stop_reason": stop_reason(reason), "stop_sequence": None},
            "usage": _usage(usage)}))
        frames.append(_event("message_stop", {}))
        return b"".join(frames)

    def fail(self, err: ProxyError) -> bytes:
        return _event("error", error_body(err))


class MessagesExchange:
    """The Messages face of one request (see ``api/answer.py``)."""

    __slots__ = ("conv",)
    keepalive = KEEPALIVE
    keeps_turns = False

    def __init__(self, conv: Conversation) -> None:
        self.conv = conv

    def stream_encoder(self) -> MessagesStream:
        return MessagesStream(self.conv.model)

    def complete(self, acc: Accumulator, reason: str, usage: Usage) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if acc.reasoning:
            thinking = "".join(acc.reasoning)
            content.append({"type": "thinking", "thinking": thinking,
                            "signature": _signature(thinking)})
        if acc.content:
            content.append({"type": "text", "text": "".join(acc.content)})
        for call in acc.tool_calls:
            content.append({"type": "tool_use", "id": call["id"],
                            "name": call["function"]["name"],
                            "input": _input(call["function"]["arguments"])})
        return {"id": message_id(), "type": "message", "role": "assistant",
                "model": self.conv.model, "content": content,
                "stop_reason": stop_reason(reason), "stop_sequence": None,
                "usage": _usage(usage)}
