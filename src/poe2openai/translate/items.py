"""Neutral output items: what an answer is made of, for every face. Pure: no I/O.

The translator (:mod:`.response`) turns Poe's events into these small tuples; the faces'
stream encoders and the non-stream :class:`Accumulator` read them:

* ``(CONTENT, text)`` — answer text
* ``(REASONING, text)`` — thinking text
* ``(TOOL_CALL, index, call_id, name)`` — a tool call starts
* ``(TOOL_ARGS, index, fragment)`` — more of its JSON arguments
* ``(ERROR, ProxyError)`` — Poe reported an error; the answer is over
* ``(RESET,)`` — non-stream only: forget the content so far
* ``(FILE, url, content_type, name, inline_ref)`` — a file the bot produced (the media
  stage turns these into Markdown links; without it, the :class:`Accumulator` keeps them)

How an answer ended (a neutral finish reason) and its usage are in :mod:`.conversation`.
"""

from __future__ import annotations

from typing import Any, Final

from ..errors import ProxyError

__all__ = ["CONTENT", "ERROR", "FILE", "REASONING", "RESET", "TOOL_ARGS", "TOOL_CALL",
           "Accumulator", "Out", "add_text", "merge_text"]

CONTENT: Final = 0
REASONING: Final = 1
TOOL_CALL: Final = 2
TOOL_ARGS: Final = 3
ERROR: Final = 4
#: Non-stream only: forget the content so far (a ``replace_response`` rewrote it).
RESET: Final = 5
#: A file the bot produced (Poe ``file`` event); see ``translate/media.py``.
FILE: Final = 6

Out = tuple[Any, ...]


def merge_text(items: list[Out]) -> list[Out]:
    """``items`` with adjacent text of one kind (``CONTENT`` or ``REASONING``) joined into
    one item: what arrived in one network read goes out as one frame on every face."""
    out: list[Out] = []
    for item in items:
        kind = item[0]
        if out and (kind == CONTENT or kind == REASONING) and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + item[1])
        else:
            out.append(item)
    return out


def add_text(parts: list[str], text: str) -> None:
    """Append ``text`` to ``parts`` (joined later with ``"".join``), merging pieces as they
    come: a piece is merged into the one before it once it is as long, so the list holds
    O(log n) strings whose lengths halve from front to back and every character is copied
    O(log n) times. An answer of many small events held as one string per event would cost
    about 70 bytes per event beside its text, for every open stream."""
    parts.append(text)
    while len(parts) > 1 and len(parts[-1]) >= len(parts[-2]):
        last = parts.pop()
        parts[-1] += last


class Accumulator:
    """Collects output items into one non-stream message."""

    __slots__ = ("content", "error", "files", "reasoning", "tool_calls")
    #: Tokens of content and reasoning already counted and let go (see ``usage.Tally``).
    content_tokens = 0
    reasoning_tokens = 0

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: list[dict[str, Any]] = []
        self.error: ProxyError | None = None
        #: ``(url, content_type, name)`` of the files that reached it (the Images API's
        #: answers: without the media stage, files are not turned into links).
        self.files: list[tuple[str, str, str]] = []

    def add(self, items: list[Out]) -> None:
        for item in items:
            kind = item[0]
            if kind == CONTENT:
                add_text(self.content, item[1])
            elif kind == REASONING:
                add_text(self.reasoning, item[1])
            elif kind == TOOL_CALL:
                self.tool_calls.append({
                    "id": item[2], "type": "function",
                    "function": {"name": item[3], "arguments": ""},
                })
            elif kind == TOOL_ARGS:
                for call in self.tool_calls[item[1]:item[1] + 1]:
                    call["function"]["arguments"] += item[2]
            elif kind == ERROR:
                self.error = item[1]
            elif kind == RESET:
                # The bot rewrote its whole answer (any "Thinking..." text included); the
                # files it sent stay: a replacement only rewrites the text that shows them.
                self.content.clear()
                self.reasoning.clear()
            elif kind == FILE:
                self.files.append((item[1], item[2], item[3]))
