"""Fast JSON: orjson when installed, the standard library otherwise; a nesting bound."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

__all__ = ["MAX_DEPTH", "JSONDecodeError", "dumps", "dumps_str", "loads", "too_deep"]

#: How deeply client JSON may nest (the body itself is level 1). orjson parses up to 1024
#: levels but writes at most 254, and the Poe query wraps client values in a few more
#: levels; 128 leaves room for both and for any real schema.
MAX_DEPTH: Final = 128

try:
    import orjson

    JSONDecodeError: type[ValueError] = orjson.JSONDecodeError
    # orjson's own functions, not wrappers: they run for every event of every answer.
    dumps: Callable[[Any], bytes] = orjson.dumps
    loads: Callable[[bytes | bytearray | str], Any] = orjson.loads

except ImportError:  # pragma: no cover - exercised only without orjson
    JSONDecodeError = json.JSONDecodeError
    _encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def dumps(obj: Any) -> bytes:
        return _encode(obj).encode()

    def loads(data: bytes | bytearray | str) -> Any:
        return json.loads(data)


def dumps_str(obj: Any) -> str:
    return dumps(obj).decode()


def too_deep(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """The path (``a.b[0].c``) of a value nested deeper than ``limit`` levels in
    ``value``, or ``None``. Iterative (no recursion limit); each container is visited
    at most twice (once more to find the path when there is one).
    """
    level: list[Any] = [value] if type(value) in _CONTAINERS else []
    depth = 1
    while level:
        if depth > limit:
            return _path(_find(value, limit))
        nxt: list[Any] = []
        add = nxt.extend
        for node in level:
            add([v for v in (node.values() if type(node) is dict else node)
                 if type(v) in _CONTAINERS])
        level = nxt
        depth += 1
    return None


_CONTAINERS: Final = (dict, list)


def _find(value: Any, limit: int) -> list[Any]:
    """The keys leading to a container nested deeper than ``limit`` (there is one)."""
    # (container, its depth, its parent's entry, its key in the parent)
    stack: list[tuple[Any, int, Any, Any]] = [(value, 1, None, None)]
    while stack:
        entry = stack.pop()
        node, depth = entry[0], entry[1]
        if depth > limit:
            keys: list[Any] = []
            while entry[2] is not None:
                keys.append(entry[3])
                entry = entry[2]
            return keys[::-1]
        items = node.items() if type(node) is dict else enumerate(node)
        stack.extend((v, depth + 1, entry, k) for k, v in items if type(v) in _CONTAINERS)
    raise AssertionError("no value is nested that deep")  # pragma: no cover


def _path(keys: list[Any]) -> str:
    """``["a", 0, "b"]`` → ``"a[0].b"``, cut after 200 characters (whole keys)."""
    out = ""
    for key in keys:
        part = f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
        if len(out) + len(part) > 200:
            return out + "…"
        out += part
    return out
