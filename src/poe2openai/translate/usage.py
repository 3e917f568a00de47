"""Token counts for ``usage``. Pure: no I/O.

Poe's bot protocol reports no token counts (except the ``usage`` of a trailing
``json`` chunk some tool-capable bots send, which is used when present), so
they are counted locally: with tiktoken's ``o200k_base`` when
:mod:`poe2openai.tokenizer` could load it, else with this estimate of about
four bytes of UTF-8 per token (the usual ratio for English with OpenAI's
tokenizers). Every function takes the counter to use.

* prompt: every Poe message's text (+4 per message, +2 for the reply, as OpenAI
  documents for its chat format) plus the JSON of the tool definitions and of
  the tool-call round sent in ``tool_calls``/``tool_results``;
* completion: answer text + reasoning + every tool call's name and arguments;
  ``completion_tokens_details.reasoning_tokens`` is the reasoning part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..jsonlib import dumps_str
from .conversation import Usage
from .items import CONTENT, REASONING, RESET, Accumulator, Out

__all__ = ["ByteTally", "Counter", "Tally", "TallyingEncoder", "add_usage", "answer_usage",
           "chat_usage", "count_tokens", "count_usage", "estimate_cut", "o200k_cut",
           "prompt_tokens", "query_prompt_tokens", "upstream_usage", "utf8_size"]

#: Per-message overhead of the chat format, as OpenAI documents for its models.
_PER_MESSAGE = 4
_PER_REPLY = 2

Counter = Callable[[str], int]
#: Where a text can be cut so that counting both halves gives its count (0: nowhere); the
#: second argument says where to start looking (no cut before it needs looking at).
Cutter = Callable[[str, int], int]


def utf8_size(text: str) -> int:
    """The size of ``text`` in UTF-8 (a lone surrogate, which JSON can carry, as 3 bytes)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def count_tokens(text: str) -> int:
    """The estimate: about four bytes of UTF-8 per token (at least one for any text)."""
    if not text:
        return 0
    return (utf8_size(text) + 3) // 4


def prompt_tokens(texts: Iterable[str], count: Counter = count_tokens) -> int:
    total = _PER_REPLY
    for text in texts:
        total += _PER_MESSAGE + count(text)
    return total


def query_prompt_tokens(body: dict[str, Any], count: Counter = count_tokens) -> int:
    """Prompt tokens of a Poe query body: messages, tool definitions, the last tool round."""
    total = prompt_tokens((m.get("content") or "" for m in body.get("query") or ()), count)
    for key in ("tools", "tool_calls", "tool_results"):
        value = body.get(key)
        if value:
            total += count(dumps_str(value))
    return total


def count_usage(query: dict[str, Any], acc: Accumulator, count: Counter = count_tokens) -> Usage:
    """The usage of one answer: the query's prompt, and the answer's text, reasoning and
    tool calls."""
    return answer_usage(query_prompt_tokens(query, count), acc, count)


def answer_usage(prompt: int, acc: Accumulator, count: Counter = count_tokens) -> Usage:
    """The usage of one answer whose prompt counted ``prompt`` tokens."""
    thinking, answer = acc.reasoning_tokens, acc.content_tokens
    if acc.reasoning:  # (a tally holds none, or only what it could not count yet)
        thinking += count("".join(acc.reasoning))
    if acc.content:
        answer += count("".join(acc.content))
    for call in acc.tool_calls:
        answer += count(call["function"]["name"]) + count(call["function"]["arguments"])
    return Usage(prompt, answer + thinking, thinking)


def estimate_cut(text: str, start: int = 1) -> int:
    """A cut for :func:`count_tokens`: where the UTF-8 before it is a multiple of four bytes
    (then the estimate of the two halves adds up to the estimate of the whole). It looks
    near the end only, whatever ``start`` says."""
    raw = text.encode("utf-8", "surrogatepass")
    end = len(raw) & ~3
    if end == len(raw):
        return len(text)
    for _ in range(16):  # a character boundary at a multiple of 4 (60 bytes back at most)
        if end <= 0:
            return 0
        if raw[end] & 0xC0 != 0x80:  # not a continuation byte: a character starts here
            return len(raw[:end].decode("utf-8", "surrogatepass"))
        end -= 4
    return 0


def o200k_cut(text: str, start: int = 1) -> int:
    """A cut for ``o200k_base``: before the last space (at ``start`` or after) that sits
    between a non-space and a letter. Its pre-tokenizer (the pattern in
    :mod:`poe2openai.tokenizer`) always ends a piece there and starts " word" anew, and
    tokens never cross pieces."""
    i = len(text) - 1
    start = max(1, start)
    while True:
        i = text.rfind(" ", start, i)
        if i < start:
            return 0
        if not text[i - 1].isspace() and text[i + 1:i + 2].isalpha():
            return i


#: How much answer text a :class:`Tally` holds before it counts what it can.
TALLY_HOLD = 256


class Tally(Accumulator):
    """An :class:`Accumulator` for usage alone: a stream's answer and reasoning are counted
    as they grow, in pieces cut where the count does not change, so that an open stream
    holds about :data:`TALLY_HOLD` characters of them instead of the whole answer. Stream
    items only (no ``RESET``).

    A text may have no cut for a long while (a list of numbers has no space before a
    letter): then it is held, and looked at again only after :data:`TALLY_HOLD` more
    characters, from where the last look ended, so that the work stays linear."""

    __slots__ = ("_count", "_cut", "_from", "_next", "content_tokens", "reasoning_tokens")

    def __init__(self, count: Counter, cut: Cutter) -> None:
        super().__init__()
        self._count, self._cut = count, cut
        self.content_tokens = self.reasoning_tokens = 0
        # Per kind (content, reasoning): the held length at which to look for a cut next,
        # and where that look starts (no cut before it).
        self._next = [TALLY_HOLD, TALLY_HOLD]
        self._from = [1, 1]

    def add(self, items: list[Out]) -> None:
        super().add(items)
        # add_text keeps the longest piece first: it is at least half of what is held.
        if self.content and 2 * len(self.content[0]) >= self._next[0]:
            self.content_tokens += self._take(self.content, 0)
        if self.reasoning and 2 * len(self.reasoning[0]) >= self._next[1]:
            self.reasoning_tokens += self._take(self.reasoning, 1)

    def _take(self, parts: list[str], kind: int) -> int:
        if sum(map(len, parts)) < self._next[kind]:
            return 0
        text = "".join(parts)
        cut = self._cut(text, self._from[kind])
        if not cut:
            parts[:] = [text]
            self._next[kind] = len(text) + TALLY_HOLD
            self._from[kind] = len(text) - 1  # the last character's space has no next yet
            return 0
        parts[:] = [text[cut:]] if cut < len(text) else []
        self._next[kind], self._from[kind] = TALLY_HOLD, 1
        return self._count(text[:cut])


class ByteTally(Accumulator):
    """A :class:`Tally` for the estimate (:func:`count_tokens`, about four bytes of UTF-8 per
    token): a stream's answer and reasoning are counted in UTF-8 bytes as they come, and
    none of their text is held. Tool calls are kept, as by an :class:`Accumulator`."""

    __slots__ = ("_content_bytes", "_reasoning_bytes")

    def __init__(self) -> None:
        # No lists until an item needs them (a tool call, a file): most answers are text
        # alone, and every open stream has one of these. (A tuple: nothing can be added.)
        self.content = self.reasoning = self.tool_calls = self.files = ()  # type: ignore[assignment]
        self.error = None
        self._content_bytes = self._reasoning_bytes = 0

    def add(self, items: list[Out]) -> None:
        for item in items:
            kind = item[0]
            if kind == CONTENT:
                self._content_bytes += utf8_size(item[1])
            elif kind == REASONING:
                self._reasoning_bytes += utf8_size(item[1])
            else:
                if kind == RESET:
                    self._content_bytes = self._reasoning_bytes = 0
                if isinstance(self.tool_calls, tuple):
                    error = self.error
                    super().__init__()  # the lists, needed now
                    self.error = error
                super().add([item])

    # What the estimate of the whole text would be: count_tokens(text) for a text of
    # this many bytes. (answer_usage adds the count of the held text: none.)
    @property
    def content_tokens(self) -> int:
        return (self._content_bytes + 3) // 4

    @content_tokens.setter
    def content_tokens(self, tokens: int) -> None:
        self._content_bytes = 4 * tokens

    @property
    def reasoning_tokens(self) -> int:
        return (self._reasoning_bytes + 3) // 4

    @reasoning_tokens.setter
    def reasoning_tokens(self, tokens: int) -> None:
        self._reasoning_bytes = 4 * tokens


class TallyingEncoder(ByteTally):
    """A stream encoder that keeps none of the answer it renders, and is its
    :class:`ByteTally` (one object per stream instead of two, and the text counted where
    it is encoded): its :meth:`output` is a count, right for the estimate only. A subclass
    counts in :meth:`encode`, inline for its usual item, with :meth:`add` for the rest."""

    __slots__ = ()
    keeps_output = False

    def output(self) -> ByteTally:
        return self


def add_usage(total: Usage | None, usage: Usage | None) -> Usage | None:
    """Usage over every Poe query of an answer (structured-output repairs count too)."""
    if total is None or usage is None:
        return usage or total
    return Usage(total.input_tokens + usage.input_tokens,
                 total.output_tokens + usage.output_tokens,
                 total.reasoning_tokens + usage.reasoning_tokens,
                 total.cached_tokens + usage.cached_tokens)


def chat_usage(usage: Usage) -> dict[str, Any]:
    """Chat Completions' ``usage`` object."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def upstream_usage(raw: Any) -> Usage | None:
    """The OpenAI ``usage`` object a bot reported (in a ``json`` chunk), if it is usable."""
    if not isinstance(raw, dict):
        return None
    prompt, completion = _int(raw.get("prompt_tokens")), _int(raw.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    details = raw.get("completion_tokens_details")
    reasoning = _int(details.get("reasoning_tokens")) if isinstance(details, dict) else None
    pdetails = raw.get("prompt_tokens_details")
    cached = _int(pdetails.get("cached_tokens")) if isinstance(pdetails, dict) else None
    return Usage(prompt, completion, reasoning or 0, cached or 0)
