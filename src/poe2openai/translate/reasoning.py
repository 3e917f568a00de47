"""Poe's "Thinking..." block → reasoning. Pure: no I/O.

Poe's reasoning bots write their thinking into the answer text itself::

    *Thinking...*

    > The user asks for X.
    > Let me check Y.

    The answer proper.

:class:`ReasoningSplitter` is a :class:`~.response.Stage` that splits that
text into reasoning and answer while it streams:

* The marker (``*Thinking...*``, ``Thinking...`` and a few spellings) counts
  only as the whole first non-blank line of the answer. ``Thinking...`` later in
  an answer, or followed by more words on its line, is ordinary text (the
  original's false positive, B9).
* After the marker, lines starting with ``>`` are reasoning (``"> "`` or
  ``">"`` removed); blank lines are skipped (between quoted lines they become
  paragraph breaks). The answer starts at the first non-blank line that does not
  start with ``>``; that line and everything after it is content, each
  character exactly once (the original's B8 duplicated or lost it).
* Text is held back only while it could still be a marker or a line prefix
  (bounded by :data:`MAX_HOLD`); everything else is passed on at once.

Formats (``ModelOptions.reasoning_format``): ``reasoning_content`` gives
``(REASONING, text)`` items (``delta.reasoning_content`` /
``message.reasoning_content``); ``think`` inlines the thinking into the
content as ``<think>\\n…\\n</think>\\n\\n`` followed by the answer;
``hidden`` drops it.
"""

from __future__ import annotations

from typing import Final

from .items import CONTENT, REASONING, RESET, Out

__all__ = ["MARKERS", "ReasoningSplitter", "strip_thinking"]

#: Spellings of Poe's thinking marker (the whole first line of an answer).
MARKERS: Final = tuple(
    f"{wrap}Thinking{dots}{wrap}" for wrap in ("*", "_", "**", "") for dots in ("...", "…"))
_MARKER_LEN: Final = max(map(len, MARKERS))
#: Every start of a marker ("", "T", "*Th"...): a line that may still become one.
_MARKER_STARTS: Final = frozenset(m[:i] for m in MARKERS for i in range(len(m) + 1))
#: The most text held back while it could still be a marker or the start of a line.
MAX_HOLD: Final = 256

_START, _THINKING, _ANSWER = 0, 1, 2
# What the current line of the thinking block is, once its first character is known.
_UNDECIDED, _QUOTE = 0, 1

THINK_OPEN: Final = "<think>\n"
THINK_CLOSE: Final = "\n</think>\n\n"


class ReasoningSplitter:
    """Splits a leading "Thinking..." block out of the content items."""

    __slots__ = ("_any", "_buf", "_format", "_lead", "_line", "_pending_nl", "_state",
                 "_streaming", "_strip_space", "active")

    def __init__(self, reasoning_format: str = "reasoning_content", *,
                 streaming: bool = True) -> None:
        self._format = reasoning_format
        self._streaming = streaming
        self.active = True
        self._reset()

    def _reset(self) -> None:
        self._state = _START
        self._buf = ""  # _START: the answer so far
        self._line = _UNDECIDED  # _THINKING: kind of the current line
        self._lead = ""  # _THINKING: leading blanks of the current, undecided line
        self._strip_space = False  # _THINKING: drop one space after ">"
        self._pending_nl = 0  # _THINKING: line breaks owed before more reasoning
        self._any = False  # _THINKING: some reasoning was given out

    # -- Stage protocol ---------------------------------------------------------------

    def feed(self, items: list[Out]) -> list[Out]:
        out: list[Out] = []
        for item in items:
            kind = item[0]
            if kind == CONTENT:
                if self._state == _ANSWER:
                    out.append(item)
                elif self._state == _START:
                    self._start(item[1], out)
                else:
                    self._think(item[1], out)
            elif kind == RESET:
                # Non-stream only: a replace_response rewrote the whole answer, thinking included.
                self._reset()
                out.append(item)
            else:
                if self._state == _START and self._buf:
                    self._to_answer(self._buf, out)  # keep the order of held text and items
                out.append(item)
        return out

    def flush(self) -> list[Out]:
        out: list[Out] = []
        if self._state == _START:
            self._to_answer(self._buf, out)
        elif self._state == _THINKING:
            if self._lead:  # an unfinished blank line
                self._lead = ""
            if self._format == "think":
                out.append((CONTENT, THINK_CLOSE.rstrip("\n")))
            self._state = _ANSWER
        return out

    # -- states -----------------------------------------------------------------------

    def _start(self, text: str, out: list[Out]) -> None:
        buf = self._buf + text
        body = buf.lstrip()
        if not body:
            if len(buf) > MAX_HOLD:
                self._to_answer(buf, out)
            else:
                self._buf = buf
            return
        nl = body.find("\n")
        line = (body if nl < 0 else body[:nl]).rstrip(" \t\r")
        if nl < 0:
            if len(body) <= _MARKER_LEN + 16 and line in _MARKER_STARTS:
                self._buf = buf  # could still be the marker: wait for the end of the line
            else:
                self._to_answer(buf, out)
            return
        if line not in MARKERS:
            self._to_answer(buf, out)
            return
        self._buf = ""
        self._state = _THINKING
        if self._format == "think":
            out.append((CONTENT, THINK_OPEN))
        self._think(body[nl + 1:], out)

    def _to_answer(self, text: str, out: list[Out]) -> None:
        self._buf = ""
        self._state = _ANSWER
        if text:
            out.append((CONTENT, text))
        # In a non-stream answer a replace_response (RESET) may still restart the text.
        self.active = not self._streaming

    def _think(self, text: str, out: list[Out]) -> None:
        i, n = 0, len(text)
        while i < n:
            if self._line == _UNDECIDED:
                j = i
                while j < n and text[j] in " \t\r":
                    j += 1
                self._lead += text[i:j]
                i = j
                if i == n:
                    if len(self._lead) > MAX_HOLD:
                        self._end_thinking(self._lead, out)
                    return
                c = text[i]
                if c == "\n":  # a blank line
                    self._lead = ""
                    if self._any:
                        self._pending_nl += 1
                    i += 1
                elif c == ">":
                    self._lead = ""
                    self._line = _QUOTE
                    self._strip_space = True
                    i += 1
                else:
                    self._end_thinking(self._lead + text[i:], out)
                    return
            else:
                if self._strip_space:
                    self._strip_space = False
                    if text[i] == " ":
                        i += 1
                        continue
                nl = text.find("\n", i)
                end = n if nl < 0 else nl
                segment = text[i:end].replace("\r", "")  # CRLF line ends: reasoning is display text
                if segment:
                    if self._pending_nl:
                        segment = "\n" * self._pending_nl + segment
                        self._pending_nl = 0
                    self._any = True
                    self._reasoning(segment, out)
                if nl < 0:
                    return
                if self._any:
                    self._pending_nl += 1
                self._line = _UNDECIDED
                i = nl + 1

    def _reasoning(self, text: str, out: list[Out]) -> None:
        if self._format == "reasoning_content":
            out.append((REASONING, text))
        elif self._format == "think":
            out.append((CONTENT, text))
        # "hidden": dropped

    def _end_thinking(self, answer: str, out: list[Out]) -> None:
        self._lead = ""
        self._pending_nl = 0
        if self._format == "think":
            out.append((CONTENT, THINK_CLOSE + answer))
            self._state = _ANSWER
            self._buf = ""
            self.active = not self._streaming
            return
        self._to_answer(answer, out)


def strip_thinking(text: str) -> str:
    """The answer part of a whole answer text: a leading "Thinking..." block removed."""
    splitter = ReasoningSplitter("hidden", streaming=False)
    items = splitter.feed([(CONTENT, text)]) + splitter.flush()
    return "".join(item[1] for item in items if item[0] == CONTENT)
