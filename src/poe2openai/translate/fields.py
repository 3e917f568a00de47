"""What every face's request parser checks first, and the small field readers they share.
Pure: no I/O."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequest
from ..jsonlib import MAX_DEPTH, too_deep

__all__ = ["check_nesting", "kind_of", "model_name", "request_object", "stream_flag"]


def check_nesting(body: dict[str, Any]) -> None:
    """400 naming the path when ``body`` nests deeper than :data:`MAX_DEPTH` levels: such
    values could not be written into the Poe query (or a tool-call history)."""
    deep = too_deep(body)
    if deep is not None:
        raise InvalidRequest(f"'{deep}' is nested too deeply: a request's JSON may be nested "
                             f"at most {MAX_DEPTH} levels deep.", param=deep)


def request_object(body: Any) -> dict[str, Any]:
    """The body, which must be a JSON object within the nesting bound."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    check_nesting(body)
    return body


def model_name(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    return model.strip()


def stream_flag(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    return bool(stream)


def kind_of(value: Any) -> str | None:
    """A ``type`` or ``role`` as a string; anything else (a list, an object) is no name, and
    is refused as an unknown one."""
    return value if isinstance(value, str) else None
