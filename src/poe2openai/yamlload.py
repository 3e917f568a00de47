"""Loading ``models.yaml`` text safely: a round-trip load (comments and line numbers kept,
for the editor and for errors that name the line) whose depth, alias expansion and
running time are bounded while it composes, and :class:`ConfigError`, how every problem
with the file is reported. No I/O: callers hand in text. The schema is
:mod:`.modelconfig`'s.
"""

from __future__ import annotations

import threading
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

__all__ = ["MAX_DEPTH", "MAX_EXPANSION", "ConfigError", "LoadCancelled", "load_yaml",
           "yaml_error"]

#: Deepest nesting accepted, counting the top level (a model map needs four levels,
#: plus whatever its ``parameters`` nest), in the file and in what aliases make of it.
MAX_DEPTH = 32
#: How much YAML aliases (``*name``) may repeat in all: characters of the repeated
#: values plus one per value. Anchors and aliases for shared ``parameters`` fit easily;
#: a "billion laughs" that would grow to gigabytes is refused before it is built.
MAX_EXPANSION = 1_000_000


class ConfigError(ValueError):
    """models.yaml (or an admin save) does not follow the schema, or is not valid YAML."""

    def __init__(self, message: str, *, line: int | None = None, where: str | None = None,
                 source: str | None = None) -> None:
        self.message = message
        self.line = line  #: 1-based line in the file, when known
        self.where = where  #: the key, e.g. ``models["GPT-4o"].enable``
        self.source = source  #: the file name, when the error comes from a file
        super().__init__(self.describe())

    def describe(self) -> str:
        """``file:line: key: reason`` (the parts that are known)."""
        head = ""
        if self.source:
            head = self.source + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            head = f"line {self.line}: "
        return head + (f"{self.where}: " if self.where else "") + self.message

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "line": self.line, "where": self.where,
                "source": self.source, "text": self.describe()}


class LoadCancelled(Exception):
    """A load was stopped from outside (the server is shutting down)."""


class _BoundedComposer(Composer):
    """ruamel's composer, refusing depth and alias expansion over the limits as it
    goes, before anything big or deep is built, and stopping when asked to."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.warn_double_anchors = False  # legal YAML: the later anchor wins
        self._cancel: threading.Event | None = getattr(loader, "bounded_cancel", None)
        self._source: str | None = getattr(loader, "bounded_source", None)
        self._nest = 0
        self._expansion = 0
        self._size: dict[int, tuple[int, int]] = {}  # id(node) -> (weight, height)

    def _fail(self, message: str, event: Any) -> ConfigError:
        mark = getattr(event, "start_mark", None)
        line = mark.line + 1 if mark is not None else None
        return ConfigError(message, line=line, source=self._source)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self._cancel is not None and self._cancel.is_set():
            raise LoadCancelled
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            node = self.anchors.get(event.anchor)
            if node is not None:
                if isinstance(node, MappingNode | SequenceNode) and node.end_mark is None:
                    # still being composed: the alias sits inside its own anchor
                    raise self._fail(f"the alias *{event.anchor} refers to a value that "
                                     "contains it (a loop)", event)
                weight, height = self._measure(node)
                self._expansion += weight
                if self._expansion > MAX_EXPANSION:
                    raise self._fail(
                        f"YAML aliases repeat too much: more than {MAX_EXPANSION:,} "
                        "characters and values in all (a \"billion laughs\"?); write the "
                        "values out or share less", event)
                if self._nest + height > MAX_DEPTH:
                    raise self._fail(f"the alias *{event.anchor} makes the data nested more "
                                     f"than {MAX_DEPTH} levels deep", event)
            return super().compose_node(parent, index)
        self._nest += 1
        if self._nest > MAX_DEPTH:
            raise self._fail(f"nested more than {MAX_DEPTH} levels deep", event)
        try:
            return super().compose_node(parent, index)
        finally:
            self._nest -= 1

    def _measure(self, root: Node) -> tuple[int, int]:
        """Weight (values plus characters) and height of a finished node, counting
        shared nodes as often as they appear. Iterative; each node is measured once."""
        size = self._size
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, ready = stack.pop()
            if id(node) in size:
                continue
            kids = _children(node)
            if not ready:
                stack.append((node, True))
                stack.extend((k, False) for k in kids if id(k) not in size)
                continue
            if kids:
                weight = 1 + sum(size[id(k)][0] for k in kids)
                height = 1 + max(size[id(k)][1] for k in kids)
            else:
                value = node.value
                weight, height = 1 + (len(value) if isinstance(value, str) else 0), 1
            size[id(node)] = (min(weight, MAX_EXPANSION + 1), height)
        return size[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_yaml(text: str, *, source: str | None = None,
              cancel: threading.Event | None = None) -> Any:
    """Round-trip load (keeps comments and line numbers). Raises :class:`YAMLError`,
    :class:`ConfigError` for data nested or expanding beyond :data:`MAX_DEPTH` /
    :data:`MAX_EXPANSION`, and :class:`LoadCancelled` once ``cancel`` is set."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.Composer = _BoundedComposer
    yaml.bounded_cancel = cancel  # type: ignore[attr-defined]
    yaml.bounded_source = source  # type: ignore[attr-defined]
    return yaml.load(text)


def yaml_error(exc: MarkedYAMLError, source: str | None) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    parts = [p for p in (exc.context, exc.problem) if p]
    reason = ", ".join(parts) or "syntax error"
    if "\t" in reason or "found character '\\t'" in reason:
        reason += " (YAML does not allow tabs for indentation)"
    return ConfigError(f"YAML syntax error: {reason}", line=line, source=source)
