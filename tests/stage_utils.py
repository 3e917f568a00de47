"""Run a Stage over a text split in every possible way; merge the output for comparison."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from poe2openai.translate.response import CONTENT, REASONING, TOOL_ARGS, TOOL_CALL, Out, Stage


def splits(text: str, *, triples: bool = False) -> Iterator[list[str]]:
    """The text whole, cut at every point, one character per piece (and optionally
    cut at every pair of points)."""
    yield [text]
    for i in range(1, len(text)):
        yield [text[:i], text[i:]]
    yield list(text)
    if triples:
        for i in range(1, len(text)):
            for j in range(i + 1, len(text)):
                yield [text[:i], text[i:j], text[j:]]


def run(stage: Stage, pieces: list[str], *, flush: bool = True) -> list[Out]:
    out: list[Out] = []
    stages = [stage]
    for piece in pieces:
        if stages:
            out += stages[0].feed([(CONTENT, piece)])
            if not stages[0].active:
                stages = []
                continue
        else:
            out.append((CONTENT, piece))
    if flush and stages:
        out += stages[0].flush()
    return out


def merge(items: list[Out]) -> list[tuple[Any, ...]]:
    """Adjacent text of one kind joined; tool calls as (TOOL_CALL, index, name, args)."""
    merged: list[tuple[Any, ...]] = []
    calls: dict[int, list[Any]] = {}
    for item in items:
        kind = item[0]
        if kind in (CONTENT, REASONING):
            if not item[1]:
                continue
            if merged and merged[-1][0] == kind:
                merged[-1] = (kind, merged[-1][1] + item[1])
            else:
                merged.append((kind, item[1]))
        elif kind == TOOL_CALL:
            entry = [TOOL_CALL, item[1], item[3], ""]
            calls[item[1]] = entry
            merged.append(entry)  # type: ignore[arg-type]
        elif kind == TOOL_ARGS:
            calls[item[1]][3] += item[2]
        else:
            merged.append(item)
    return [tuple(m) for m in merged]


def check_all_splits(factory: Callable[[], Stage], text: str, expected: list[tuple[Any, ...]],
                     *, triples: bool = False, normalize: Callable[[list[Any]], Any] = merge
                     ) -> None:
    for pieces in splits(text, triples=triples):
        got = normalize(run(factory(), pieces))
        assert got == expected, (pieces, got)
