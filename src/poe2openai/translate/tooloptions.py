"""Tool definitions and ``tool_choice``: the request side of tool calling. Pure: no I/O.

:func:`parse_tool_options` reads Chat's ``tools`` / ``tool_choice`` /
``parallel_tool_calls`` (tolerant: ``description``, ``parameters``, ``properties`` and
``required`` may be missing); :func:`parse_tool_choice` is shared with the Responses face;
:func:`message_calls` reads an assistant message's ``tool_calls``. The tool history goes
into the Poe query in :mod:`.query`; answers come back through :mod:`.nativetools` or
:mod:`.xmltools`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Final

from ..errors import InvalidRequest
from ..jsonlib import dumps_str

__all__ = ["NO_TOOLS", "ToolOptions", "message_calls", "new_call_id", "parse_tool_choice",
           "parse_tool_options"]


def new_call_id() -> str:
    """A fresh tool-call id (random, so ids never repeat across restarts)."""
    return "call_" + secrets.token_hex(12)


# ---------------------------------------------------------------------------------------
# Request: tools, tool_choice, parallel_tool_calls
# ---------------------------------------------------------------------------------------

@dataclass(slots=True)
class ToolOptions:
    #: Function tools: ``{"name", "description", "parameters"}`` (parameters: a JSON schema).
    tools: list[dict[str, Any]] = field(default_factory=list)
    #: ``"auto"``, ``"none"``, ``"required"``, or the name of the one tool to call.
    choice: str = "auto"
    #: A named ``choice`` is a tool name, not one of the keywords.
    named: bool = False
    parallel: bool = True

    @property
    def enabled(self) -> bool:
        """Tools are offered to the bot on this request."""
        return bool(self.tools) and self.choice != "none"

    def offered(self) -> list[dict[str, Any]]:
        """The tools the bot may call (only the named one for a named ``tool_choice``)."""
        if not self.enabled:
            return []
        if self.named:
            return [t for t in self.tools if t["name"] == self.choice]
        return self.tools

    def find(self, name: str) -> dict[str, Any] | None:
        for tool in self.tools:
            if tool["name"] == name:
                return tool
        low = name.lower()
        for tool in self.tools:
            if tool["name"].lower() == low:
                return tool
        return None


NO_TOOLS: Final = ToolOptions()


def parse_tool_options(body: dict[str, Any]) -> ToolOptions:
    raw = body.get("tools")
    tools: list[dict[str, Any]] = []
    if raw is not None:
        if not isinstance(raw, list):
            raise InvalidRequest("'tools' must be an array of tool objects.", param="tools")
        for i, tool in enumerate(raw):
            parsed = _parse_tool(tool, f"tools[{i}]")
            if parsed is None:
                continue
            if any(t["name"] == parsed["name"] for t in tools):
                raise InvalidRequest(f"Duplicate tool name {parsed['name']!r}.",
                                     param=f"tools[{i}].function.name")
            tools.append(parsed)
    opts = parse_tool_choice(body.get("tool_choice"), tools)

    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise InvalidRequest("'parallel_tool_calls' must be a boolean.",
                                 param="parallel_tool_calls")
        opts.parallel = parallel
    return opts


def _parse_tool(tool: Any, path: str) -> dict[str, Any] | None:
    if not isinstance(tool, dict):
        raise InvalidRequest(f"{path} must be an object.", param=path)
    kind = tool.get("type", "function")
    if kind != "function":
        return None  # e.g. OpenAI's built-in or "custom" tools: Poe has no equivalent
    fn = tool.get("function")
    if not isinstance(fn, dict):
        raise InvalidRequest(f"{path}.function must be an object.", param=f"{path}.function")
    name = fn.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest(f"{path}.function.name must be a non-empty string.",
                             param=f"{path}.function.name")
    description = fn.get("description")
    if description is None:
        description = ""
    elif not isinstance(description, str):
        raise InvalidRequest(f"{path}.function.description must be a string.",
                             param=f"{path}.function.description")
    params = fn.get("parameters")
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        raise InvalidRequest(f"{path}.function.parameters must be a JSON schema object.",
                             param=f"{path}.function.parameters")
    params = dict(params)
    params.setdefault("type", "object")
    if params["type"] == "object":
        if not isinstance(params.get("properties"), dict):
            params["properties"] = {}
    return {"name": name.strip(), "description": description, "parameters": params}


def parse_tool_choice(choice: Any, tools: list[dict[str, Any]], *,
                      allow_custom: bool = False) -> ToolOptions:
    """``tool_choice`` (OpenAI's shapes, Chat and Responses) over the parsed ``tools``."""
    opts = ToolOptions(tools=tools)
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise InvalidRequest("'tool_choice' must be 'none', 'auto', 'required' or a "
                                 "named function.", param="tool_choice")
        opts.choice = choice
    elif isinstance(choice, dict):
        _parse_choice_object(choice, opts, allow_custom)
    elif choice is not None:
        raise InvalidRequest("'tool_choice' must be a string or an object.", param="tool_choice")
    if (opts.choice == "required" or opts.named) and not opts.tools:
        raise InvalidRequest("'tool_choice' asks for a tool call but 'tools' is empty.",
                             param="tool_choice")
    return opts


#: tool_choice objects that name a built-in tool (Responses): the bot chooses as with "auto".
_BUILTIN_CHOICES: Final = frozenset({"web_search", "web_search_preview", "file_search",
                                     "code_interpreter", "image_generation", "computer_use",
                                     "computer_use_preview", "mcp", "tool_search"})


def _parse_choice_object(choice: dict[str, Any], opts: ToolOptions, allow_custom: bool) -> None:
    kind = choice.get("type")
    if kind == "function" or (allow_custom and kind == "custom"):
        fn = choice.get("function")
        # Chat: {"type": "function", "function": {"name"}}; Responses: {"type", "name"}.
        name = fn.get("name") if isinstance(fn, dict) else choice.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("tool_choice.function.name must be a string.",
                                 param="tool_choice")
        if not any(t["name"] == name for t in opts.tools):
            raise InvalidRequest(f"tool_choice names {name!r}, which is not in 'tools'.",
                                 param="tool_choice")
        opts.choice, opts.named = name, True
    elif kind == "allowed_tools":
        allowed = choice.get("allowed_tools")
        if not isinstance(allowed, dict):
            raise InvalidRequest("tool_choice.allowed_tools must be an object.",
                                 param="tool_choice")
        mode = allowed.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise InvalidRequest("tool_choice.allowed_tools.mode must be 'auto' or 'required'.",
                                 param="tool_choice")
        listed = allowed.get("tools")
        if not isinstance(listed, list):
            raise InvalidRequest("tool_choice.allowed_tools.tools must be an array of tools.",
                                 param="tool_choice.allowed_tools.tools")
        names = set()
        for t in listed:
            fn = t.get("function") if isinstance(t, dict) else None
            name = fn.get("name") if isinstance(fn, dict) else (
                t.get("name") if isinstance(t, dict) else None)
            if isinstance(name, str):
                names.add(name)
        opts.tools = [t for t in opts.tools if t["name"] in names]
        if not opts.tools:
            raise InvalidRequest("tool_choice.allowed_tools names no tool that is in 'tools'.",
                                 param="tool_choice")
        opts.choice = mode
    elif allow_custom and isinstance(kind, str) and kind in _BUILTIN_CHOICES:
        opts.choice = "auto"
    else:
        raise InvalidRequest("tool_choice must be {'type': 'function', 'function': "
                             "{'name': …}}.", param="tool_choice")


def message_calls(msg: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """An assistant message's ``tool_calls`` as ToolCallDefinitions (arguments a string)."""
    raw = msg.get("tool_calls")
    if raw is None:
        fc = msg.get("function_call")  # legacy single call
        raw = [{"id": None, "type": "function", "function": fc}] if isinstance(fc, dict) else []
    if not isinstance(raw, list):
        raise InvalidRequest(f"{path}.tool_calls must be an array.", param=f"{path}.tool_calls")
    calls: list[dict[str, Any]] = []
    for j, call in enumerate(raw):
        where = f"{path}.tool_calls[{j}]"
        if not isinstance(call, dict):
            raise InvalidRequest(f"{where} must be an object.", param=where)
        fn = call.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"{where}.function.name must be a non-empty string.",
                                 param=f"{where}.function.name")
        args = fn.get("arguments") if isinstance(fn, dict) else None
        if args is None or args == "":
            args = "{}"
        elif not isinstance(args, str):
            args = dumps_str(args)
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = f"call_{path.replace('messages[', '').rstrip(']')}_{j}"
        calls.append({"id": call_id, "type": "function",
                      "function": {"name": name, "arguments": args}})
    return calls
