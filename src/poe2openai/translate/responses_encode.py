"""The Responses face's answers: the ``response`` object and its typed event stream.
Pure: no I/O.

A stream is ``response.created``, ``response.in_progress``, then per output item
``response.output_item.added``, its parts and deltas, ``response.output_item.done``, and
exactly one of ``response.completed`` / ``response.incomplete`` / ``response.failed``.
Every event has an ``event:`` line equal to its ``type`` and an increasing
``sequence_number``; keep-alives are events too (:data:`KEEPALIVE`). Text and reasoning
items are closed as soon as another kind of item starts; tool calls stay open until the
answer ends (Poe may send the arguments of parallel calls interleaved).

A free-form (custom) tool reaches the bot as a function with one string argument,
``input``; its call comes back as a ``custom_tool_call`` whose ``input`` is that string,
sent whole when the call is complete.
"""

from __future__ import annotations

import random
import time
from typing import Any

from ..errors import ProxyError
from ..jsonlib import JSONDecodeError, dumps, loads
from .conversation import Conversation, Usage
from .items import CONTENT, REASONING, TOOL_ARGS, TOOL_CALL, Accumulator, Out, add_text

__all__ = ["KEEPALIVE", "ResponseSettings", "ResponsesExchange", "ResponsesStream",
           "new_id", "usage_object"]

#: Written while Poe is silent. An event, not an SSE comment: Codex's idle timeout
#: (``stream_idle_timeout_ms``) counts only events, and its parser drops comments. Clients
#: skip the unknown type (Codex, the Vercel AI SDK; the openai SDKs pass it through). It
#: has no ``sequence_number``: the ticker that writes it knows nothing of the stream.
KEEPALIVE = b'event: keepalive\ndata: {"type":"keepalive"}\n\n'


def new_id(prefix: str) -> str:
    # Unique, not secret: the fast Mersenne Twister.
    return f"{prefix}_{random.getrandbits(128):032x}"


class ResponseSettings:
    """What the request asked for, echoed in every ``response`` object."""

    __slots__ = ("custom_tools", "echo", "namespaces", "store")

    def __init__(self, echo: dict[str, Any], custom_tools: frozenset[str], store: bool,
                 namespaces: dict[str, tuple[str, str]] | None = None) -> None:
        #: Request fields echoed in the response (``instructions``, ``tools``, …).
        self.echo = echo
        #: Names of the free-form tools: their calls are ``custom_tool_call`` items.
        self.custom_tools = custom_tools
        self.store = store
        #: Bot-side tool name → (namespace, name) for functions of ``namespace`` tools.
        self.namespaces = namespaces or {}


def usage_object(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def _custom_input(arguments: str) -> str:
    """The raw input of a free-form tool call from the ``{"input": "..."}`` the bot wrote."""
    try:
        value = loads(arguments) if arguments.strip() else ""
    except JSONDecodeError:
        return arguments
    if isinstance(value, dict):
        raw = value.get("input")
        if isinstance(raw, str):
            return raw
        if len(value) == 1:
            only = next(iter(value.values()))
            if isinstance(only, str):
                return only
        return dumps(value).decode()
    return value if isinstance(value, str) else arguments


def _message_item(id: str, text: str, status: str) -> dict[str, Any]:
    return {"id": id, "type": "message", "status": status, "role": "assistant",
            "content": [_text_part(text)] if status == "completed" else []}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _reasoning_item(id: str, text: str | None) -> dict[str, Any]:
    summary = [] if text is None else [{"type": "summary_text", "text": text}]
    return {"id": id, "type": "reasoning", "summary": summary, "encrypted_content": None}


def _call_item(id: str, call_id: str, name: str, arguments: str, *, custom: bool,
               done: bool, settings: ResponseSettings) -> dict[str, Any]:
    status = "completed" if done else "in_progress"
    if custom:
        item = {"id": id, "type": "custom_tool_call", "status": status, "call_id": call_id,
                "name": name, "input": _custom_input(arguments) if done else ""}
    else:
        item = {"id": id, "type": "function_call", "status": status, "call_id": call_id,
                "name": name, "arguments": arguments if done else ""}
    spaced = settings.namespaces.get(name)
    if spaced is not None:
        item["namespace"], item["name"] = spaced
    return item


def _base(id: str, created: int, model: str, settings: ResponseSettings) -> dict[str, Any]:
    return {
        "id": id, "object": "response", "created_at": created, "status": "in_progress",
        "background": False, "completed_at": None, "error": None, "incomplete_details": None,
        **settings.echo, "model": model, "output": [], "store": settings.store, "usage": None,
    }


def _finish_status(reason: str) -> tuple[str, dict[str, Any] | None]:
    if reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


class _Item:
    __slots__ = ("call_id", "custom", "head", "id", "kind", "name", "parts", "pos")

    def __init__(self, kind: int, pos: int, id: str, call_id: str = "", name: str = "",
                 custom: bool = False) -> None:
        self.kind, self.pos, self.id = kind, pos, id
        self.call_id, self.name, self.custom = call_id, name, custom
        self.parts: list[str] = []
        self.head: bytes | None = None  # a text item's delta events up to the text


class ResponsesStream:
    """The event stream of one answer; also builds the final ``response`` object."""

    __slots__ = ("_calls", "_created", "_current", "_id", "_items", "_model", "_output", "_seq",
                 "_settings", "response")
    wants_usage = True
    keeps_output = True  # every item, for response.completed

    def __init__(self, conv: Conversation, settings: ResponseSettings, id: str | None = None
                 ) -> None:
        # The ``response`` object is built when an event carries it, not kept: it has a
        # field per request setting, and every open stream would hold one.
        self._id, self._created, self._model = id or new_id("resp"), int(time.time()), conv.model
        self._output: list[dict[str, Any]] = []
        #: The finished ``response`` object; ``None`` until :meth:`finish` or :meth:`fail`.
        self.response: dict[str, Any] | None = None
        self._settings = settings
        self._seq = 0
        self._items: list[_Item] = []
        self._current: _Item | None = None  # the open text or reasoning item
        self._calls: dict[int, _Item] = {}  # open tool calls by their output-item index

    def _event(self, type: str, **fields: Any) -> bytes:
        fields["type"] = type
        fields["sequence_number"] = self._seq
        self._seq += 1
        return b"event: " + type.encode() + b"\ndata: " + dumps(fields) + b"\n\n"

    def output(self) -> Accumulator:
        """The answer so far, for counting its tokens (the text is shared, not copied)."""
        acc = Accumulator()
        for item in self._items:
            if item.kind == CONTENT:
                acc.content += item.parts
            elif item.kind == REASONING:
                acc.reasoning += item.parts
            else:
                acc.tool_calls.append({"id": item.call_id, "type": "function", "function": {
                    "name": item.name, "arguments": "".join(item.parts)}})
        return acc

    def _text_delta(self, cur: _Item, text: str) -> bytes:
        """``response.output_text.delta``, byte for byte what :meth:`_event` writes, with the
        constant part rendered once per output item (this runs for every chunk)."""
        if cur.head is None:
            cur.head = (b'event: response.output_text.delta\ndata: {"item_id":' + dumps(cur.id)
                        + b',"output_index":%d,"content_index":0,"delta":' % cur.pos)
        seq = self._seq
        self._seq = seq + 1
        return (cur.head + dumps(text) + b',"logprobs":[],"type":"response.output_text.delta",'
                b'"sequence_number":%d}\n\n' % seq)

    def _response(self) -> dict[str, Any]:
        response = _base(self._id, self._created, self._model, self._settings)
        response["output"] = self._output
        return response

    def start(self, prompt_tokens: int | None = None) -> bytes:
        response = self._response()
        return (self._event("response.created", response=response)
                + self._event("response.in_progress", response=response))

    def encode(self, items: list[Out]) -> bytes:
        cur = self._current
        if len(items) == 1 and cur is not None and items[0][0] == cur.kind == CONTENT:
            # One read, one piece of text, in the open message: the usual case.
            text = items[0][1]
            if not text:
                return b""
            add_text(cur.parts, text)
            return self._text_delta(cur, text)
        frames: list[bytes] = []
        for item in items:  # adjacent text is one item already (merge_text)
            kind = item[0]
            if kind == CONTENT or kind == REASONING:
                text = item[1]
                if not text:
                    continue
                cur = self._current
                if cur is None or cur.kind != kind:
                    cur = self._open_text(kind, frames)
                add_text(cur.parts, text)
                if kind == CONTENT:
                    frames.append(self._text_delta(cur, text))
                else:
                    frames.append(self._event("response.reasoning_summary_text.delta",
                                              item_id=cur.id, output_index=cur.pos,
                                              summary_index=0, delta=text))
            elif kind == TOOL_CALL:
                self._close_text(frames)
                name = item[3]
                custom = name in self._settings.custom_tools
                call = _Item(TOOL_CALL, len(self._items), new_id("ctc" if custom else "fc"),
                             item[2], name, custom)
                self._items.append(call)
                self._calls[item[1]] = call
                frames.append(self._event(
                    "response.output_item.added", output_index=call.pos,
                    item=_call_item(call.id, call.call_id, name, "", custom=custom, done=False,
                                    settings=self._settings)))
            elif kind == TOOL_ARGS:
                open_call = self._calls.get(item[1])
                if open_call is None or not item[2]:
                    continue
                open_call.parts.append(item[2])
                if not open_call.custom:  # a custom call's input is sent whole when complete
                    frames.append(self._event("response.function_call_arguments.delta",
                                              item_id=open_call.id, output_index=open_call.pos,
                                              delta=item[2]))
        return b"".join(frames)

    def _open_text(self, kind: int, frames: list[bytes]) -> _Item:
        self._close_text(frames)
        self._close_calls(frames)
        item = _Item(kind, len(self._items), new_id("msg" if kind == CONTENT else "rs"))
        self._items.append(item)
        self._current = item
        if kind == CONTENT:
            frames.append(self._event("response.output_item.added", output_index=item.pos,
                                      item=_message_item(item.id, "", "in_progress")))
            frames.append(self._event("response.content_part.added", item_id=item.id,
                                      output_index=item.pos, content_index=0,
                                      part=_text_part("")))
        else:
            frames.append(self._event("response.output_item.added", output_index=item.pos,
                                      item=_reasoning_item(item.id, None)))
            frames.append(self._event("response.reasoning_summary_part.added", item_id=item.id,
                                      output_index=item.pos, summary_index=0,
                                      part={"type": "summary_text", "text": ""}))
        return item

    def _close_text(self, frames: list[bytes]) -> None:
        item = self._current
        if item is None:
            return
        self._current = None
        text = "".join(item.parts)
        if item.kind == CONTENT:
            frames.append(self._event("response.output_text.done", item_id=item.id,
                                      output_index=item.pos, content_index=0, text=text,
                                      logprobs=[]))
            frames.append(self._event("response.content_part.done", item_id=item.id,
                                      output_index=item.pos, content_index=0,
                                      part=_text_part(text)))
            done = _message_item(item.id, text, "completed")
        else:
            frames.append(self._event("response.reasoning_summary_text.done", item_id=item.id,
                                      output_index=item.pos, summary_index=0, text=text))
            frames.append(self._event("response.reasoning_summary_part.done", item_id=item.id,
                                      output_index=item.pos, summary_index=0,
                                      part={"type": "summary_text", "text": text}))
            done = _reasoning_item(item.id, text)
        self._output.append(done)
        frames.append(self._event("response.output_item.done", output_index=item.pos,
                                  item=done))

    def _close_calls(self, frames: list[bytes]) -> None:
        for call in sorted(self._calls.values(), key=lambda c: c.pos):
            args = "".join(call.parts)
            done = _call_item(call.id, call.call_id, call.name, args, custom=call.custom,
                              done=True, settings=self._settings)
            if call.custom:
                if done["input"]:
                    frames.append(self._event("response.custom_tool_call_input.delta",
                                              item_id=call.id, output_index=call.pos,
                                              delta=done["input"]))
                frames.append(self._event("response.custom_tool_call_input.done",
                                          item_id=call.id, output_index=call.pos,
                                          input=done["input"]))
            else:
                frames.append(self._event("response.function_call_arguments.done",
                                          item_id=call.id, output_index=call.pos,
                                          name=call.name, arguments=args))
            self._output.append(done)
            frames.append(self._event("response.output_item.done", output_index=call.pos,
                                      item=done))
        self._calls.clear()

    def finish(self, reason: str, usage: Usage | None) -> bytes:
        frames: list[bytes] = []
        self._close_text(frames)
        self._close_calls(frames)
        self._output.sort(key=_position(self._items))
        status, details = _finish_status(reason)
        self.response = response = self._response()
        response.update(status=status, incomplete_details=details, usage=usage_object(usage))
        if status == "completed":
            response["completed_at"] = int(time.time())
        frames.append(self._event(f"response.{status}", response=response))
        return b"".join(frames)

    def fail(self, err: ProxyError) -> bytes:
        frames: list[bytes] = []
        self._close_text(frames)
        self._close_calls(frames)
        self.response = response = self._response()
        response.update(status="failed", error={"code": err.code or err.type,
                                                "message": err.message})
        frames.append(self._event("response.failed", response=response))
        return b"".join(frames)


def _position(items: list[_Item]) -> Any:
    order = {item.id: item.pos for item in items}
    return lambda entry: order.get(entry["id"], 0)


class ResponsesExchange:
    """The Responses face of one request (see ``api/answer.py``)."""

    __slots__ = ("_response", "_stream", "conv", "settings")
    keepalive = KEEPALIVE

    def __init__(self, conv: Conversation, settings: ResponseSettings) -> None:
        self.conv = conv
        self.settings = settings
        self._response: dict[str, Any] | None = None
        self._stream: ResponsesStream | None = None

    @property
    def response(self) -> dict[str, Any] | None:
        """The finished ``response`` object (stream or not); ``None`` until then."""
        return self._stream.response if self._stream is not None else self._response

    @property
    def keeps_turns(self) -> bool:
        """A stored response keeps its conversation (for ``previous_response_id``)."""
        return self.settings.store

    def stream_encoder(self) -> ResponsesStream:
        self._stream = ResponsesStream(self.conv, self.settings)
        return self._stream

    def complete(self, acc: Accumulator, reason: str, usage: Usage) -> dict[str, Any]:
        response = _base(new_id("resp"), int(time.time()), self.conv.model, self.settings)
        output: list[dict[str, Any]] = response["output"]
        if acc.reasoning:
            output.append(_reasoning_item(new_id("rs"), "".join(acc.reasoning)))
        if acc.content or not acc.tool_calls:
            output.append(_message_item(new_id("msg"), "".join(acc.content), "completed"))
        for call in acc.tool_calls:
            name = call["function"]["name"]
            custom = name in self.settings.custom_tools
            output.append(_call_item(new_id("ctc" if custom else "fc"), call["id"], name,
                                     call["function"]["arguments"], custom=custom, done=True,
                                     settings=self.settings))
        status, details = _finish_status(reason)
        response.update(status=status, incomplete_details=details, usage=usage_object(usage))
        if status == "completed":
            response["completed_at"] = int(time.time())
        self._response = response
        return response
