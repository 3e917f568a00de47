"""Fast JSON: orjson when installed, the standard library otherwise."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["JSONDecodeError", "dumps", "dumps_str", "loads"]

try:
    import orjson

    JSONDecodeError: type[ValueError] = orjson.JSONDecodeError

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    def loads(data: bytes | str) -> Any:
        return orjson.loads(data)

except ImportError:  # pragma: no cover - exercised only without orjson
    JSONDecodeError = json.JSONDecodeError
    _encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def dumps(obj: Any) -> bytes:
        return _encode(obj).encode()

    def loads(data: bytes | str) -> Any:
        return json.loads(data)


def dumps_str(obj: Any) -> str:
    return dumps(obj).decode()
