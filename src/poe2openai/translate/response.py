"""Poe events → OpenAI output items. Pure: no I/O.

:class:`ResponseTranslator` consumes the events of one bot answer (in the
batches the network delivers them) and returns *output items*, small tuples
that both the stream encoder and the non-stream accumulator understand:

* ``(CONTENT, text)`` — answer text
* ``(REASONING, text)`` — thinking text
* ``(TOOL_CALL, index, call_id, name)`` — a tool call starts
* ``(TOOL_ARGS, index, fragment)`` — more of its JSON arguments
* ``(ERROR, ProxyError)`` — Poe reported an error; the answer is over
* ``(FILE, url, content_type, name, inline_ref)`` — the bot produced a file; consumed
  by the media stage (``translate/media.py``), which turns it into Markdown

``json`` events (``chat.completion.chunk`` objects, how Poe streams native tool
calls) go through :class:`~.nativetools.NativeToolCalls`: ``delta.content`` is
content, ``delta.tool_calls`` become tool-call items with our own contiguous
indexes. ``finish_reason`` becomes ``"tool_calls"`` once any call was emitted.

``replace_response`` (Poe: "throw away what you showed, show this instead"):
OpenAI streams can only append, so the replacement is held back until the next
``text``/``done`` event, so a run of replacements (e.g. progress placeholders)
only sends the last one. Then, if the replacement extends what was already
streamed, only the new tail is sent, and the client's text ends up exactly
equal to Poe's answer. If it really rewrites streamed text, the stream cannot
take that back: it sends a blank line and the full replacement. A non-stream
answer is always exactly the last replacement plus the text that follows it.
"""

from __future__ import annotations

from typing import Any, Protocol
from zlib import crc32

from ..poe.errors import map_error_event
from .items import (
    CONTENT,
    ERROR,
    FILE,
    REASONING,
    RESET,
    TOOL_ARGS,
    TOOL_CALL,
    Accumulator,
    Out,
    merge_text,
)
from .nativetools import NativeToolCalls
from .reasoning import strip_thinking

__all__ = ["CONTENT", "ERROR", "FILE", "REASONING", "RESET", "TOOL_ARGS", "TOOL_CALL",
           "Accumulator", "ResponseTranslator"]

Event = tuple[str, dict[str, Any]]


class Stage(Protocol):
    """A step that rewrites output items, e.g. splitting "Thinking..." text into reasoning.

    Stages run in order over the items of each batch; a stage passes on the kinds
    it does not handle. ``flush`` gives what it held back when the answer ends.
    A stage whose ``active`` turns false is dropped, so it costs nothing after.
    A stage may also have a ``finished`` attribute: once true, the answer is over
    (e.g. text after an XML tool call) and the translator stops (``done``); and a true
    ``makes_tool_calls`` attribute if it can turn text into tool calls.
    """

    active: bool

    def feed(self, items: list[Out]) -> list[Out]: ...

    def flush(self) -> list[Out]: ...


class ResponseTranslator:
    """The state of one answer: feed it event batches, get output items."""

    __slots__ = ("_ends", "_native", "_replacement", "_sent_crc", "_sent_len", "_tools", "done",
                 "finish_reason", "stages", "streaming")

    def __init__(self, *, streaming: bool = True, stages: list[Stage] | None = None) -> None:
        self.streaming = streaming
        self.stages: list[Stage] = stages or []
        # The content given out so far, for replace_response: not the text itself (an open
        # stream would hold its whole answer), only its UTF-8 length and CRC-32.
        self._sent_len = 0
        self._sent_crc = 0
        self._replacement: str | None = None
        self.done = False  #: the answer is complete (done or error seen)
        self.finish_reason = "stop"
        self._native: NativeToolCalls | None = None  # created by the first json event
        # Whether tool calls can appear at all: only then are output items checked for them.
        # Whether a stage can end the answer (``finished``): only then is it asked, per batch.
        self._tools = any(getattr(st, "makes_tool_calls", False) for st in self.stages)
        self._ends = any(hasattr(st, "finished") for st in self.stages)

    def feed(self, events: list[Event]) -> list[Out]:
        out: list[Out] = []
        if self.done:  # nothing after "done" or "error" counts
            return out
        for name, data in events:
            if data.get("index"):  # only the first of several parallel responses is used
                continue
            if name == "text":
                text = data.get("text")
                if self._replacement is not None:
                    self._flush_replacement(out)
                if text and isinstance(text, str):
                    self._mark_sent(text)
                    out.append((CONTENT, text))
            elif name == "replace_response":
                text = data.get("text")
                if isinstance(text, str):
                    self._replacement = text
            elif name == "done":
                self.finish(out)
                break
            elif name == "error":
                self._replacement = None
                out.append((ERROR, map_error_event(data)))
                self.done = True
                break
            elif name == "json":
                self._json(data, out)
            elif name == "file":
                item = file_item(data)
                if item is not None:
                    out.append(item)
            # meta, suggested_reply, ping, data and unknown events carry nothing for the
            # client.
        if self.stages and (out or self.done):
            # After an error, whatever a stage still holds is dropped, not flushed.
            out = self._run_stages(out, flush=self.done and not (out and out[-1][0] == ERROR))
        if self._tools and out and self.finish_reason != "tool_calls":
            self._check_tool_calls(out)
        return merge_text(out) if len(out) > 1 else out

    def _json(self, data: dict[str, Any], out: list[Out]) -> None:
        if self._native is None:
            self._native = NativeToolCalls()
            self._tools = True
        items = self._native.feed(data)
        if self._native.finish_reason and self.finish_reason == "stop":
            self.finish_reason = self._native.finish_reason
        if items and self._replacement is not None:
            self._flush_replacement(out)
        for item in items:
            if item[0] == CONTENT:
                self._mark_sent(item[1])
        out += items

    def _mark_sent(self, text: str) -> None:
        raw = text.encode("utf-8", "surrogatepass")
        self._sent_crc = crc32(raw, self._sent_crc)
        self._sent_len += len(raw)

    @property
    def upstream_usage(self) -> dict[str, Any] | None:
        """The ``usage`` a bot reported in a ``json`` chunk, if any."""
        return self._native.usage if self._native is not None else None

    def _check_tool_calls(self, items: list[Out]) -> None:
        for item in items:
            if item[0] == TOOL_CALL:
                self.finish_reason = "tool_calls"
                return

    def _run_stages(self, items: list[Out], *, flush: bool) -> list[Out]:
        idle = False
        for stage in self.stages:
            items = stage.feed(items)
            if flush:
                items += stage.flush()
            elif self._ends and getattr(stage, "finished", False):
                # The stage saw the end of the answer: later stages flush, Poe is left.
                flush = True
                self.done = True
                items += stage.flush()
            if not stage.active:
                idle = True
        if idle and not flush:
            self.stages = [st for st in self.stages if st.active]
        return items

    def finish(self, out: list[Out] | None = None) -> list[Out]:
        """The answer ended (``done``, or the stream closed): flush what is held back."""
        own = out is None
        if out is None:
            out = []
        if self._replacement is not None:
            self._flush_replacement(out)
        if self._native is not None:
            out += self._native.finish()
        self.done = True
        if own and self.stages:
            out = self._run_stages(out, flush=True)
        if own and self._tools and out and self.finish_reason != "tool_calls":
            self._check_tool_calls(out)
        return merge_text(out) if own and len(out) > 1 else out

    def _flush_replacement(self, out: list[Out]) -> None:
        new = self._replacement or ""
        self._replacement = None
        sent, raw = self._sent_len, new.encode("utf-8", "surrogatepass")
        # As new.startswith(the sent text) (UTF-8 is prefix-free), by length and CRC-32: a
        # text that is not an extension passes with a chance of one in four billion, and
        # then only its tail goes out instead of a blank line and the whole replacement.
        if len(raw) >= sent and crc32(memoryview(raw)[:sent]) == self._sent_crc:
            tail = raw[sent:].decode("utf-8", "surrogatepass")
        elif self.streaming:
            if sent:
                # Text already streamed cannot be taken back: append the replacement's
                # answer (its thinking block, if any, went out as reasoning already).
                tail = "\n\n" + strip_thinking(new)
            else:
                tail = new
        else:
            out.append((RESET,))
            tail = new
        self._sent_len, self._sent_crc = len(raw), crc32(raw)
        if tail:
            out.append((CONTENT, tail))


def file_item(data: dict[str, Any]) -> Out | None:
    """``(FILE, url, content_type, name, inline_ref)`` from a ``file`` event, if it has a URL."""
    url = data.get("url")
    if not isinstance(url, str) or not url:
        return None
    content_type, name, ref = data.get("content_type"), data.get("name"), data.get("inline_ref")
    return (FILE, url, content_type if isinstance(content_type, str) else "",
            name if isinstance(name, str) else "", ref if isinstance(ref, str) and ref else None)
