"""The Chat Completions encoder: stream chunks and the non-stream completion. Pure: no I/O.

A stream chunk differs from the previous one only in its delta, so
:class:`ChunkEncoder` renders the constant part (``id``, ``created``, ``model``…)
once and per chunk serialises just the changing string.
"""

from __future__ import annotations

import random
import time
from typing import Any

from ..errors import ProxyError
from ..jsonlib import dumps
from .conversation import Conversation, Usage
from .items import (
    CONTENT,
    ERROR,
    REASONING,
    TOOL_ARGS,
    TOOL_CALL,
    Accumulator,
    Out,
)
from .usage import TallyingEncoder, chat_usage, utf8_size

__all__ = ["DONE", "KEEPALIVE", "ChatExchange", "ChunkEncoder", "completion_id",
           "make_completion"]

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"
_CHOICE = b',"choices":[{"index":0,"delta":{'


def completion_id() -> str:
    # Unique, not secret: the fast Mersenne Twister instead of a system call per request.
    return f"chatcmpl-{random.getrandbits(96):024x}"


class ChunkEncoder(TallyingEncoder):
    """Renders ``data: {chat.completion.chunk}\\n\\n`` frames for one response, and counts
    what it renders (:class:`~.usage.TallyingEncoder`)."""

    # Only the rendered prefix is kept (id, created and model are in it): an open stream
    # holds one bytes object, not the same text three ways.
    __slots__ = ("_prefix", "wants_usage")

    _tail = b'},"logprobs":null,"finish_reason":null}]}\n\n'

    def __init__(self, id: str, created: int, model: str, *, usage: bool = False) -> None:
        super().__init__()
        self.wants_usage = usage  #: a final usage chunk (``stream_options.include_usage``)
        head = dumps({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None,
        })[:-1]
        self._prefix = b"data: " + head + _CHOICE

    def role(self) -> bytes:
        return self._prefix + b'"role":"assistant","content":""' + self._tail

    def start(self, prompt_tokens: int | None = None) -> bytes:
        return self.role()

    def text(self, text: str) -> bytes:
        return self._prefix + b'"content":' + dumps(text) + self._tail

    def thinking(self, text: str) -> bytes:
        return self._prefix + b'"reasoning_content":' + dumps(text) + self._tail

    def encode(self, items: list[Out]) -> bytes:
        """Frames for a batch of output items, one per item (adjacent text is one item
        already: :func:`~.items.merge_text`)."""
        if len(items) == 1 and items[0][0] == CONTENT:  # one read, one piece of text
            text = items[0][1]
            # utf8_size(text), its ASCII case inline: every chunk passes here
            self._content_bytes += len(text) if text.isascii() else utf8_size(text)
            return self.text(text)
        self.add(items)  # counted
        frames: list[bytes] = []
        for item in items:
            k = item[0]
            if k == CONTENT:
                frames.append(self.text(item[1]))
            elif k == REASONING:
                frames.append(self.thinking(item[1]))
            elif k == TOOL_CALL:
                call = {"index": item[1], "id": item[2], "type": "function",
                        "function": {"name": item[3], "arguments": ""}}
                frames.append(self._prefix + b'"tool_calls":[' + dumps(call) + b"]" + self._tail)
            elif k == TOOL_ARGS:
                frag = {"index": item[1], "function": {"arguments": item[2]}}
                frames.append(self._prefix + b'"tool_calls":[' + dumps(frag) + b"]" + self._tail)
            elif k == ERROR:
                frames.append(self.error_frame(item[1]))
        return frames[0] if len(frames) == 1 else b"".join(frames)

    def finish_chunk(self, reason: str) -> bytes:
        return (self._prefix + b'},"logprobs":null,"finish_reason":' + dumps(reason)
                + b"}]}\n\n")

    def usage(self, usage: dict[str, Any]) -> bytes:
        head = self._prefix[:-len(_CHOICE)]
        return head + b',"choices":[],"usage":' + dumps(usage) + b"}\n\n"

    def finish(self, reason: str, usage: Usage | None) -> bytes:
        data = self.finish_chunk(reason)
        if usage is not None:
            data += self.usage(chat_usage(usage))
        return data + DONE

    def fail(self, err: ProxyError) -> bytes:
        return self.error_frame(err) + DONE

    @staticmethod
    def error_frame(err: ProxyError) -> bytes:
        return b"data: " + dumps(err.body()) + b"\n\n"


class ChatExchange:
    """The Chat Completions face of one request (see ``api/answer.py``)."""

    keepalive = KEEPALIVE
    keeps_turns = False

    __slots__ = ("conv",)

    def __init__(self, conv: Conversation) -> None:
        self.conv = conv

    def stream_encoder(self) -> ChunkEncoder:
        return ChunkEncoder(completion_id(), now(), self.conv.model, usage=self.conv.stream_usage)

    def complete(self, acc: Accumulator, reason: str, usage: Usage) -> dict[str, Any]:
        return make_completion(id=completion_id(), created=now(), model=self.conv.model, acc=acc,
                               finish_reason=reason, usage=chat_usage(usage))


def make_completion(
    *, id: str, created: int, model: str, acc: Accumulator, finish_reason: str,
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    """The non-stream ``chat.completion`` object."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(acc.content) if (acc.content or not acc.tool_calls) else None,
        "refusal": None,
    }
    if acc.reasoning:
        message["reasoning_content"] = "".join(acc.reasoning)
    if acc.tool_calls:
        message["tool_calls"] = acc.tool_calls
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def now() -> int:
    return int(time.time())
