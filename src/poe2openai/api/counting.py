"""Usage for the answering loop: what an answer keeps to be counted, and the count.

Every use of the process's tokenizer by the loop is here. Prompts are counted when their
query goes out (inline with the estimate, in a worker thread with tiktoken), so that an
open stream need not keep its query; answers are counted as they grow
(:class:`~..translate.usage.Tally`) unless the encoder keeps or counts them itself."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from ..tokenizer import TOKENIZER
from ..translate.conversation import Usage
from ..translate.items import Accumulator
from ..translate.usage import Tally, answer_usage, query_prompt_tokens, upstream_usage
from .exchange import StreamEncoder

__all__ = ["collector", "count_prompt", "usage_of"]


def collector(enc: StreamEncoder, *, structured: bool) -> Accumulator | None:
    """What a stream keeps of its answer to count it. Every answer is counted, also when
    its client does not ask for usage: the usage log and the metrics record its tokens. It
    keeps everything for structured output (it is checked at the end); nothing when the
    encoder keeps the answer anyway, or counts it in bytes for the estimate
    (:meth:`~.exchange.StreamEncoder.output`); else a tally that counts the answer in
    pieces as it grows, for o200k (the whole answer, while the tokenizer is not loaded
    yet)."""
    if structured:
        return Accumulator()
    if enc.keeps_output or (TOKENIZER.loaded and not TOKENIZER.exact):
        return None
    if not TOKENIZER.loaded:
        return Accumulator()
    return Tally(TOKENIZER.count, TOKENIZER.cut)


#: Texts longer than this are counted in a worker thread, not on the event loop.
_COUNT_INLINE = 32768


def count_prompt(query: dict[str, Any]) -> int | asyncio.Future[int]:
    """The prompt tokens of ``query``: counted now with the estimate; with tiktoken (or before
    the tokenizer is loaded) in a worker thread, to be awaited with the answer's usage. Either
    way the query itself need not be kept for the count."""
    if TOKENIZER.loaded and not TOKENIZER.exact:
        return query_prompt_tokens(query, TOKENIZER.count)
    return asyncio.get_running_loop().run_in_executor(None, _load_and_count, query)


def _load_and_count(query: dict[str, Any]) -> int:
    TOKENIZER.load()  # once per process
    return query_prompt_tokens(query, TOKENIZER.count)


def usage_of(prompt: int | asyncio.Future[int], reported: Any,
             acc: Accumulator) -> Usage | Coroutine[Any, Any, Usage]:
    """The answer's usage: the one the bot reported (``reported``, the ``usage`` of a ``json``
    chunk, if any), else the prompt's count (:func:`count_prompt`) and the answer's. Counted
    now when it can be (the usual case: no coroutine made per request), else to be awaited."""
    if reported is not None:
        bot = upstream_usage(reported)
        if bot is not None:
            return bot
    if isinstance(prompt, int) and (not TOKENIZER.exact or _held(acc) <= _COUNT_INLINE):
        return answer_usage(prompt, acc, TOKENIZER.count)
    return _usage_later(prompt, acc)


def _held(acc: Accumulator) -> int:
    return sum(map(len, acc.content)) + sum(map(len, acc.reasoning))


async def _usage_later(prompt: int | asyncio.Future[int], acc: Accumulator) -> Usage:
    if not isinstance(prompt, int):
        prompt = await prompt
    if TOKENIZER.exact and _held(acc) > _COUNT_INLINE:
        return await asyncio.get_running_loop().run_in_executor(
            None, answer_usage, prompt, acc, TOKENIZER.count)
    return answer_usage(prompt, acc, TOKENIZER.count)
