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
from .items import Accumulator

__all__ = ["Counter", "add_usage", "chat_usage", "count_tokens", "count_usage", "prompt_tokens",
           "query_prompt_tokens", "upstream_usage"]

#: Per-message overhead of the chat format, as OpenAI documents for its models.
_PER_MESSAGE = 4
_PER_REPLY = 2

Counter = Callable[[str], int]


def count_tokens(text: str) -> int:
    """The estimate: about four bytes of UTF-8 per token."""
    if not text:
        return 0
    return max(1, (len(text.encode()) + 3) // 4)


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
    prompt = query_prompt_tokens(query, count)
    thinking = count("".join(acc.reasoning))
    answer = count("".join(acc.content)) + sum(
        count(c["function"]["name"]) + count(c["function"]["arguments"]) for c in acc.tool_calls)
    return Usage(prompt, answer + thinking, thinking)


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
