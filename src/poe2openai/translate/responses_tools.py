"""The tools a Responses request offers the bot. Pure: no I/O.

Function tools as in Chat; free-form (``custom``) tools become a function with one string
argument ``input`` whose description carries the grammar; ``namespace`` tools offer their
functions as ``<namespace>__<name>``; built-in web search maps to the bot's ``web_search``
parameter where it has one; other built-in tools are left out (named in x-dropped-params).
"""

from __future__ import annotations

from typing import Any, Final

from ..errors import InvalidRequest
from .fields import kind_of

__all__ = ["ToolOffer"]

_BUILTIN_SEARCH: Final = frozenset({"web_search", "web_search_preview",
                                    "web_search_2025_08_26", "web_search_preview_2025_03_11"})


def _fail(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


class ToolOffer:
    """The tools offered to the bot: function tools (custom ones included), the names of
    the custom ones, the paths of built-in web search tools, and the namespaced names.

    A function in a ``namespace`` tool reaches the bot as ``<namespace>__<name>``; its
    calls come back with ``name`` and ``namespace`` apart, as Codex routes them.
    """

    def __init__(self) -> None:
        self.tools: list[dict[str, Any]] = []
        self.custom: set[str] = set()
        self.searches: list[str] = []
        self.namespaces: dict[str, tuple[str, str]] = {}
        #: Paths of built-in tools left out (for x-dropped-params).
        self.dropped: list[str] = []

    def add(self, raw: list[Any], path: str, namespace: str | None = None) -> None:
        for i, tool in enumerate(raw):
            where = f"{path}[{i}]"
            if not isinstance(tool, dict):
                raise _fail(f"{where} must be an object.", where)
            kind = kind_of(tool.get("type", "function"))
            if kind == "namespace" and namespace is None:
                ns, inner = tool.get("name"), tool.get("tools")
                if not isinstance(ns, str) or not ns.strip():
                    raise _fail(f"{where}.name must be a non-empty string.", f"{where}.name")
                if not isinstance(inner, list):
                    raise _fail(f"{where}.tools must be an array of tools.", f"{where}.tools")
                self.add(inner, f"{where}.tools", ns.strip())
            elif kind in _BUILTIN_SEARCH:
                # external_web_access: false asks for cached results only (Codex's default);
                # a bot's live web search is no such thing, and may cost points.
                if tool.get("external_web_access") is not False:
                    self.searches.append(where)
                else:
                    self.dropped.append(where)
            elif kind in ("function", "custom"):
                self._tool(tool, kind, where, namespace)
            else:  # another built-in tool: nothing the bot can call
                self.dropped.append(where)

    def _tool(self, tool: dict[str, Any], kind: str, where: str, namespace: str | None) -> None:
        name = tool.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _fail(f"{where}.name must be a non-empty string.", f"{where}.name")
        name = name.strip()
        description = tool.get("description")
        if description is None:
            description = ""
        elif not isinstance(description, str):
            raise _fail(f"{where}.description must be a string.", f"{where}.description")
        if namespace is not None:
            self.namespaces[f"{namespace}__{name}"] = (namespace, name)
            name = f"{namespace}__{name}"
        if any(t["name"] == name for t in self.tools):
            raise _fail(f"Duplicate tool name {name!r}.", f"{where}.name")
        if kind == "custom":
            self.custom.add(name)
            self.tools.append({
                "name": name, "description": _custom_description(tool, description),
                "parameters": {"type": "object", "properties": {"input": {
                    "type": "string", "description": "The tool's whole input as free-form text."}},
                    "required": ["input"]}})
            return
        params = tool.get("parameters")
        if params is None:
            params = {}
        elif not isinstance(params, dict):
            raise _fail(f"{where}.parameters must be a JSON schema object.",
                        f"{where}.parameters")
        params = dict(params)
        params.setdefault("type", "object")
        if params["type"] == "object" and not isinstance(params.get("properties"), dict):
            params["properties"] = {}
        self.tools.append({"name": name, "description": description, "parameters": params})


def _custom_description(tool: dict[str, Any], description: str) -> str:
    fmt = tool.get("format")
    if not isinstance(fmt, dict) or fmt.get("type") != "grammar":
        return description
    definition = fmt.get("definition")
    if not isinstance(definition, str):
        return description
    syntax = fmt.get("syntax") if isinstance(fmt.get("syntax"), str) else "grammar"
    return (f"{description}\n\nThis tool takes free-form text, not JSON: put the whole input "
            f"in the 'input' argument. The input must match this {syntax} grammar:\n"
            f"{definition}").strip()
