"""One small JSON-schema subset for the whole core. Pure: no I/O.

Bot parameters are checked against the schemas Poe publishes (:func:`check_schema`),
and XML tool-call arguments are typed by the tool's schema (:func:`schema_types`,
:func:`json_type`). Both read the same subset: ``type`` (a name or a list), ``enum``,
``const``, bounds, lengths, ``items``, ``anyOf``/``oneOf``/``allOf``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

__all__ = ["check_schema", "is_num", "json_type", "schema_types"]


def schema_types(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    t = schema.get("type")
    types: set[str] = set()
    if isinstance(t, str):
        types.add(t)
    elif isinstance(t, list):
        types.update(x for x in t if isinstance(x, str))
    for key in ("anyOf", "oneOf", "allOf"):
        subs = schema.get(key)
        if isinstance(subs, list):
            for sub in subs:
                types |= schema_types(sub)
    if not types:
        if "enum" in schema and isinstance(schema["enum"], list):
            types.update(json_type(v) for v in schema["enum"])
        elif "properties" in schema:
            types.add("object")
        elif "items" in schema:
            types.add("array")
    return types


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


def is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_string(v: Any) -> bool:
    return isinstance(v, str)


def _is_number(v: Any) -> bool:
    return is_num(v) and math.isfinite(v)


def _is_integer(v: Any) -> bool:
    return _is_number(v) and float(v).is_integer()


def _is_boolean(v: Any) -> bool:
    return isinstance(v, bool)


def _is_array(v: Any) -> bool:
    return isinstance(v, list)


def _is_object(v: Any) -> bool:
    return isinstance(v, dict)


def _is_null(v: Any) -> bool:
    return v is None


_TYPES: Final[dict[str, Callable[[Any], bool]]] = {
    "string": _is_string, "number": _is_number, "integer": _is_integer, "boolean": _is_boolean,
    "array": _is_array, "object": _is_object, "null": _is_null,
}


def check_schema(value: Any, schema: Any) -> str | None:
    """Why ``value`` does not satisfy ``schema`` (a small JSON-schema subset), or ``None``.

    Checks ``type`` (a name or a list), ``enum``, ``const``, ``minimum``, ``maximum``,
    ``exclusiveMinimum``, ``exclusiveMaximum``, ``minLength``, ``maxLength``, ``items``
    and ``anyOf``/``oneOf``; anything else is not checked.
    """
    if not isinstance(schema, dict):
        return None
    for key in ("anyOf", "oneOf"):
        subs = schema.get(key)
        if isinstance(subs, list) and subs:
            problems = [check_schema(value, s) for s in subs]
            if all(p is not None for p in problems):
                return problems[0]
    t = schema.get("type")
    if t is not None:
        names = [t] if isinstance(t, str) else [x for x in t if isinstance(x, str)] \
            if isinstance(t, list) else []
        checks = [_TYPES[n] for n in names if n in _TYPES]
        if checks and not any(ok(value) for ok in checks):
            return f"expected {' or '.join(names)}, got {_describe(value)}"
    enum = schema.get("enum")
    if isinstance(enum, list) and not any(_same(value, e) for e in enum):
        return "expected one of " + ", ".join(_show(e) for e in enum)
    if "const" in schema and not _same(value, schema["const"]):
        return f"expected {_show(schema['const'])}"
    if is_num(value):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if is_num(lo) and value < lo:
            return f"must be at least {_show(lo)}"
        if is_num(hi) and value > hi:
            return f"must be at most {_show(hi)}"
        xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if is_num(xlo) and value <= xlo:
            return f"must be greater than {_show(xlo)}"
        if is_num(xhi) and value >= xhi:
            return f"must be less than {_show(xhi)}"
    if isinstance(value, str):
        lo, hi = schema.get("minLength"), schema.get("maxLength")
        if isinstance(lo, int | float) and len(value) < lo:
            return f"must be at least {_show(lo)} characters long"
        if isinstance(hi, int | float) and len(value) > hi:
            return f"must be at most {_show(hi)} characters long"
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problem = check_schema(item, schema["items"])
            if problem is not None:
                return f"item {i}: {problem}"
    return None


def _same(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if is_num(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "an array" if isinstance(value, list) else "an object"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)
