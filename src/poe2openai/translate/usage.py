"""Token counts for ``usage``. Pure: no I/O.

Poe does not report token counts on its bot protocol, so they are estimated
locally. This estimate (about four bytes of UTF-8 per token, the usual ratio
for English with OpenAI's tokenizers) is the fallback; a tokenizer, when
available, replaces it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["count_tokens", "make_usage"]

#: Per-message overhead of the chat format, as OpenAI documents for its models.
_PER_MESSAGE = 4
_PER_REPLY = 2


def count_tokens(text: str) -> int:
    if not text:
        return 0
    return max(1, (len(text.encode()) + 3) // 4)


def prompt_tokens(texts: Iterable[str]) -> int:
    total = _PER_REPLY
    for text in texts:
        total += _PER_MESSAGE + count_tokens(text)
    return total


def make_usage(prompt: int, completion: int, reasoning: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
