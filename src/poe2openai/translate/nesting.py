"""The nesting bound every face's parser applies first. Pure: no I/O."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequest
from ..jsonlib import MAX_DEPTH, too_deep

__all__ = ["check_nesting"]


def check_nesting(body: dict[str, Any]) -> None:
    """400 naming the path when ``body`` nests deeper than :data:`MAX_DEPTH` levels: such
    values could not be written into the Poe query (or a tool-call history)."""
    deep = too_deep(body)
    if deep is not None:
        raise InvalidRequest(f"'{deep}' is nested too deeply: a request's JSON may be nested "
                             f"at most {MAX_DEPTH} levels deep.", param=deep)
