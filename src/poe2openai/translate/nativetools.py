"""Poe's native tool calls: ``json`` events (``chat.completion.chunk`` deltas) → tool-call
output items. Pure: no I/O.

:class:`NativeToolCalls` maps the deltas to tool-call items with contiguous indexes;
:class:`FirstToolCallOnly` is the stage for ``parallel_tool_calls: false``.
"""

from __future__ import annotations

from typing import Any

from ..jsonlib import dumps_str
from .items import CONTENT, REASONING, TOOL_ARGS, TOOL_CALL, Out
from .tooloptions import new_call_id

__all__ = ["FirstToolCallOnly", "NativeToolCalls"]


class _Call:
    __slots__ = ("index", "length", "poe_id")

    def __init__(self, index: int, poe_id: str | None) -> None:
        self.index = index
        self.poe_id = poe_id
        self.length = 0


class NativeToolCalls:
    """Maps the ``json`` events of one answer to output items.

    Poe's indexes are remapped to our own (unique, contiguous from 0, in order of
    first appearance); a delta that reuses an index with a different id starts a new
    call. A call's first delta must name the function; argument fragments that come
    before the name are kept until it arrives.
    """

    __slots__ = ("_all", "_by_poe", "_orphans", "finish_reason", "usage")

    def __init__(self) -> None:
        self._by_poe: dict[Any, _Call] = {}  # Poe's index → its current call
        self._orphans: dict[Any, tuple[str, str | None]] = {}  # before the name: args, id
        self._all: list[_Call] = []
        #: The ``usage`` object of a trailing usage chunk, when Poe sends one.
        self.usage: dict[str, Any] | None = None
        #: ``length`` or ``content_filter`` when the bot's chunks say so.
        self.finish_reason: str | None = None

    @property
    def calls(self) -> int:
        return len(self._all)

    def feed(self, data: dict[str, Any]) -> list[Out]:
        out: list[Out] = []
        usage = data.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        choices = data.get("choices")
        if not isinstance(choices, list):
            return out
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index") not in (0, None):
                continue
            if choice.get("finish_reason") in ("length", "content_filter"):
                self.finish_reason = choice["finish_reason"]
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                delta = choice.get("message")
                if not isinstance(delta, dict):
                    continue
            thinking = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thinking, str) and thinking:
                out.append((REASONING, thinking))
            content = delta.get("content")
            if isinstance(content, str) and content:
                out.append((CONTENT, content))
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for pos, call in enumerate(calls):
                    if isinstance(call, dict):
                        self._delta(call, pos, out)
        return out

    def _delta(self, call: dict[str, Any], pos: int, out: list[Out]) -> None:
        key = call.get("index", pos)
        if isinstance(key, bool) or not isinstance(key, int | str):
            key = pos
        fn = call.get("function")
        if not isinstance(fn, dict):
            fn = {}
        name = fn.get("name")
        args = fn.get("arguments")
        if args is None:
            args = ""
        elif not isinstance(args, str):
            args = dumps_str(args)
        poe_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
        current = self._by_poe.get(key)
        named = isinstance(name, str) and bool(name)
        if current is None or (named and poe_id is not None and poe_id != current.poe_id):
            if not named:
                prev_args, prev_id = self._orphans.get(key, ("", None))
                self._orphans[key] = (prev_args + args, prev_id or poe_id)
                return
            orphan_args, orphan_id = self._orphans.pop(key, ("", None))
            poe_id = poe_id or orphan_id
            current = _Call(len(self._all), poe_id)
            self._all.append(current)
            self._by_poe[key] = current
            out.append((TOOL_CALL, current.index, poe_id or new_call_id(), name))
            args = orphan_args + args
        if args:
            current.length += len(args)
            out.append((TOOL_ARGS, current.index, args))

    def finish(self) -> list[Out]:
        """``"{}"`` for calls that got no arguments at all (clients parse them as JSON)."""
        return [(TOOL_ARGS, c.index, "{}") for c in self._all if not c.length]


class FirstToolCallOnly:
    """Stage for ``parallel_tool_calls: false``: only the first call gets through."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = True

    def feed(self, items: list[Out]) -> list[Out]:
        return [it for it in items if not (it[0] in (TOOL_CALL, TOOL_ARGS) and it[1] > 0)]

    def flush(self) -> list[Out]:
        return []
