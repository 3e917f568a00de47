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
           "Accumulator", "Out"]

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


class Accumulator:
    """Collects output items into one non-stream message."""

    __slots__ = ("content", "error", "files", "reasoning", "tool_calls")

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
                self.content.append(item[1])
            elif kind == REASONING:
                self.reasoning.append(item[1])
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
