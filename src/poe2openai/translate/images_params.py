"""The Images API's options → the image bot's own parameters. Pure: no I/O.

Poe's image bots publish their options in ``/v1/models`` (``parameters``: a name and a
JSON schema each), and each bot names them its own way. :func:`map_image_options` maps
an OpenAI option onto a parameter only where the bot's schema has an equivalent, with a
value the schema takes; every other option is named in ``x-dropped-params``:

* ``size`` (``WxH``) → ``size``/``image_size``/``resolution`` when the bot takes the very
  value; else ``width`` + ``height``; else an aspect ratio (``aspect_ratio``, ``aspect``,
  ``aspectRatio``): the bot's listed ratio closest to ``W:H``, or ``W:H`` in lowest terms
  when the bot takes any string;
* ``quality`` → ``quality`` (``hd`` ↔ ``high``, ``standard`` ↔ ``medium`` when the bot
  lists those instead);
* ``background`` → ``background``, or a boolean ``transparent``/``transparent_background``;
* ``output_format`` → ``output_format``/``format`` (``jpeg`` ↔ ``jpg``);
* ``style``, ``output_compression``, ``moderation``, ``input_fidelity`` → the parameter of
  the same name.

String values match a bot's listed values without regard to case. Unknown schema (Poe's
model list unavailable): nothing is mapped, everything is named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from .images_request import image_size
from .params import Candidate
from .schema import check_schema

__all__ = ["map_image_options"]

Schemas = dict[str, dict[str, Any]]
#: A mapping: (the option's value, the bot's schemas) → parameters, or None.
Mapper = Callable[[Any, Schemas], dict[str, Any] | None]

_ASPECT_NAMES: Final = ("aspect_ratio", "aspect", "aspectRatio", "aspect-ratio")
_ALIASES: Final = {"hd": ("high",), "high": ("hd",), "standard": ("medium", "normal"),
                   "medium": ("standard",), "jpeg": ("jpg",), "jpg": ("jpeg",)}


def map_image_options(options: dict[str, Any], schema: list[dict[str, Any]] | None
                      ) -> tuple[list[Candidate], list[str]]:
    """Parameter candidates for the options the bot has an equivalent of (each checked
    against its schema), and the names of the others."""
    if schema is None:
        return [], sorted(options)
    known: Schemas = {}
    for entry in schema:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            s = entry.get("schema")
            known[entry["name"]] = s if isinstance(s, dict) else {}
    candidates: list[Candidate] = []
    dropped: list[str] = []
    for name, value in options.items():
        mapper = _MAPPERS.get(name, _same_name(name))
        params = mapper(value, known)
        if not params:
            dropped.append(name)
            continue
        candidates += [Candidate(p, v, name, name) for p, v in params.items()]
    return candidates, sorted(dropped)


def _fit(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` as the schema takes it (a listed string in its own case), or ``None``."""
    if check_schema(value, schema) is None:
        return value
    enum = schema.get("enum")
    if isinstance(value, str) and isinstance(enum, list):
        for option in enum:
            if isinstance(option, str) and option.lower() == value.lower():
                return option
    return None


def _first(names: tuple[str, ...], values: tuple[Any, ...], known: Schemas
           ) -> dict[str, Any] | None:
    for name in names:
        if name in known:
            for value in values:
                fitted = _fit(value, known[name])
                if fitted is not None:
                    return {name: fitted}
    return None


def _same_name(option: str) -> Mapper:
    def mapper(value: Any, known: Schemas) -> dict[str, Any] | None:
        return _first((option,), (value, *_ALIASES.get(str(value), ())), known)
    return mapper


def _size(value: Any, known: Schemas) -> dict[str, Any] | None:
    found = _first(("size", "image_size", "resolution"), (value,), known)
    if found is not None:
        return found
    width, height = image_size(value)
    if "width" in known and "height" in known:
        w, h = _fit(width, known["width"]), _fit(height, known["height"])
        if w is not None and h is not None:
            return {"width": w, "height": h}
    for name in _ASPECT_NAMES:
        if name in known:
            ratio = _aspect(width, height, known[name])
            if ratio is not None:
                return {name: ratio}
    return None


def _aspect(width: int, height: int, schema: dict[str, Any]) -> str | None:
    """The listed ratio closest to ``width:height`` (or the exact one, when any goes)."""
    enum = schema.get("enum")
    if isinstance(enum, list):
        target = math.log(width / height)
        best: tuple[float, str] | None = None
        for option in enum:
            r = _ratio(option)
            if r is not None and (best is None or abs(math.log(r) - target) < best[0]):
                best = (abs(math.log(r) - target), option)
        return best[1] if best is not None else None
    g = math.gcd(width, height)
    exact = f"{width // g}:{height // g}"
    return exact if check_schema(exact, schema) is None else None


def _ratio(option: Any) -> float | None:
    if not isinstance(option, str):
        return None
    a, sep, b = option.replace("x", ":").partition(":")
    try:
        w, h = float(a), float(b)
    except ValueError:
        return None
    return w / h if sep and w > 0 and h > 0 and math.isfinite(w / h) else None


def _background(value: Any, known: Schemas) -> dict[str, Any] | None:
    found = _first(("background",), (value,), known)
    if found is not None:
        return found
    if value in ("transparent", "opaque"):
        for name in ("transparent_background", "transparent"):
            s = known.get(name)
            if s is not None and check_schema(True, s) is None:
                return {name: value == "transparent"}
    return None


def _format(value: Any, known: Schemas) -> dict[str, Any] | None:
    return _first(("output_format", "format"), (value, *_ALIASES.get(value, ())), known)


_MAPPERS: Final[dict[str, Mapper]] = {
    "size": _size,
    "background": _background,
    "output_format": _format,
}
