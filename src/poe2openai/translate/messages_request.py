"""The Anthropic Messages face's requests (``POST /v1/messages``) → neutral conversation.
Pure: no I/O.

``system`` (a string or text blocks) is the first system turn; ``role: "system"``
messages inside ``messages`` (Claude Code sends one for every non-Claude model name)
stay where they are, as Poe system messages. A user message's ``tool_result`` blocks
become tool turns, and its other blocks a user turn after them. ``thinking`` and
``redacted_thinking`` blocks are accepted and not sent (Poe takes no such input).
Server tools (``web_search_*`` …) map to the bot's ``web_search`` parameter where it has
one; every other server tool is left out and named in ``x-dropped-params``.
"""

from __future__ import annotations

import math
from typing import Any, Final

from ..errors import InvalidRequest
from ..jsonlib import dumps_str
from .attachments import MediaPart, media_from_data, media_from_url
from .conversation import Conversation, ToolCall, Turn
from .fields import kind_of, model_name, request_object, stream_flag
from .params import Candidate, collect_candidates
from .structured import forced_tool_format, parse_text_format
from .tooloptions import ToolOptions

__all__ = ["MESSAGES_FIELDS", "parse_messages_request"]

#: Messages request fields. They are never sent as bot parameters.
MESSAGES_FIELDS: Final = frozenset({
    "model", "messages", "system", "max_tokens", "stop_sequences", "temperature", "top_p",
    "top_k", "tools", "tool_choice", "thinking", "output_config", "metadata", "service_tier",
    "context_management", "container", "stream", "mcp_servers", "output_format",
})
#: Fields with an effect (the rest of MESSAGES_FIELDS is accepted and named as dropped).
_READ: Final = frozenset({"model", "messages", "system", "max_tokens", "stop_sequences",
                          "temperature", "tools", "tool_choice", "thinking", "output_config",
                          "stream", "output_format"})
_IGNORED_BLOCKS: Final = frozenset({"thinking", "redacted_thinking", "server_tool_use",
                                    "web_search_tool_result", "web_fetch_tool_result",
                                    "code_execution_tool_result", "mcp_tool_use",
                                    "mcp_tool_result", "container_upload",
                                    "bash_code_execution_tool_result",
                                    "text_editor_code_execution_tool_result"})


def _fail(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def parse_messages_request(body: Any) -> Conversation:
    body = request_object(body)
    model = model_name(body)
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _fail("'max_tokens' is required and must be a positive integer.", "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _fail("'messages' must be a non-empty array.", "messages")
    conv = Conversation(model=model, turns=[], max_tokens=max_tokens)

    system = body.get("system")
    if system is not None:
        text = _system_text(system, "system")
        if text:
            conv.turns.append(Turn("system", text))
    for i, msg in enumerate(messages):
        _message(conv, msg, f"messages.{i}")
    if not any(t.role in ("user", "tool") for t in conv.turns):
        raise _fail("'messages' needs at least one user message.", "messages")

    conv.stream = stream_flag(body)
    temperature = body.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) \
                or not math.isfinite(temperature) or not 0 <= temperature <= 1:
            raise _fail("'temperature' must be a number between 0 and 1.", "temperature")
        conv.temperature = float(temperature)
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _fail("'stop_sequences' must be an array of strings.", "stop_sequences")
        conv.stop = [s for s in stops if s]

    tools, searches, dropped_tools = _tools(body.get("tools"))
    conv.tools = _tool_choice(body.get("tool_choice"), tools)
    # A forced tool call (tool_choice "tool", or "any" with one tool) is structured output:
    # a bot that writes the arguments as text still gives a valid call.
    content_format = None
    if body.get("output_format") is not None:
        content_format = parse_text_format(body["output_format"], "output_format")
    conv.output_format = forced_tool_format(conv.tools) or content_format
    candidates = collect_candidates(body, standard=MESSAGES_FIELDS)
    config = body.get("output_config")
    if config is not None:
        if not isinstance(config, dict):
            raise _fail("'output_config' must be an object.", "output_config")
        effort = config.get("effort")
        if effort is not None:
            if not isinstance(effort, str) or not effort.strip():
                raise _fail("'output_config.effort' must be a string.", "output_config.effort")
            candidates.insert(0, Candidate("reasoning_effort", _EFFORT.get(effort, effort),
                                           "output_config.effort", "output_config", "effort"))
    if searches:
        candidates.insert(0, Candidate("web_search", True, searches[0], "tools", "if_known"))
    conv.param_candidates = candidates
    conv.dropped = sorted({k for k in body if k not in _READ and body[k] is not None}
                          | set(dropped_tools))
    return conv


#: The first system block Claude Code sends: telemetry, different in every session, which
#: would only spoil the bot's prompt caching.
_BILLING_HEADER: Final = "x-anthropic-billing-header:"

#: Anthropic's effort names that Poe's reasoning_effort values spell differently.
_EFFORT: Final = {"max": "xhigh"}


def _system_text(system: Any, path: str) -> str:
    if isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise _fail(f"'{path}' must be a string or an array of text blocks.", path)
    texts = []
    for j, block in enumerate(system):
        where = f"{path}.{j}"
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _fail(f"{where} must be a text block.", where)
        text = block.get("text")
        if not isinstance(text, str):
            raise _fail(f"{where}.text must be a string.", f"{where}.text")
        if text.startswith(_BILLING_HEADER):
            continue  # Claude Code's per-session telemetry line: no instruction for the bot
        texts.append(text)
    return "\n\n".join(texts)


def _message(conv: Conversation, msg: Any, path: str) -> None:
    if not isinstance(msg, dict):
        raise _fail(f"{path} must be an object.", path)
    role: Any = kind_of(msg.get("role"))
    content = msg.get("content")
    if role == "system":
        conv.turns.append(Turn("system", _system_text(content, f"{path}.content")))
        return
    if role != "user" and role != "assistant":
        raise _fail(f"{path}.role must be 'user' or 'assistant'; got {role!r}.", f"{path}.role")
    if isinstance(content, str):
        conv.turns.append(Turn(role, content))
        return
    if not isinstance(content, list):
        raise _fail(f"{path}.content must be a string or an array of content blocks.",
                    f"{path}.content")
    turn = Turn(role)
    texts: list[str] = []
    media: list[MediaPart] = []
    for j, block in enumerate(content):
        where = f"{path}.content.{j}"
        if not isinstance(block, dict):
            raise _fail(f"{where} must be an object.", where)
        kind = kind_of(block.get("type"))
        if _text_or_media(block, kind, where, conv, texts, media):
            continue
        if kind == "tool_use" and role == "assistant":
            turn.calls.append(_tool_use(block, where))
        elif kind == "tool_result" and role == "user":
            result = Turn("tool")
            call_id = block.get("tool_use_id")
            if not isinstance(call_id, str) or not call_id:
                raise _fail(f"{where}.tool_use_id must be a non-empty string.",
                            f"{where}.tool_use_id")
            result.call_id = call_id
            result.is_error = block.get("is_error") is True
            conv.turns.append(result)
            result_media: list[MediaPart] = []
            result.text = _result_text(block.get("content"), f"{where}.content", conv,
                                       result_media)
            conv.media += [_at(m, len(conv.turns) - 1) for m in result_media]
        elif kind in _IGNORED_BLOCKS:
            continue
        else:
            raise _fail(f"{where}.type {kind!r} is not supported here.", f"{where}.type")
    turn.text = "\n".join(texts)
    if turn.text or turn.calls or media or role == "assistant":
        conv.turns.append(turn)
        conv.media += [_at(m, len(conv.turns) - 1) for m in media]


def _at(part: MediaPart, index: int) -> MediaPart:
    from dataclasses import replace

    return replace(part, message=index)


def _tool_use(block: dict[str, Any], where: str) -> ToolCall:
    call_id, name = block.get("id"), block.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise _fail(f"{where}.id must be a non-empty string.", f"{where}.id")
    if not isinstance(name, str) or not name:
        raise _fail(f"{where}.name must be a non-empty string.", f"{where}.name")
    args = block.get("input")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise _fail(f"{where}.input must be an object.", f"{where}.input")
    return ToolCall(call_id, name, dumps_str(args))


def _result_text(content: Any, path: str, conv: Conversation, media: list[MediaPart]) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise _fail(f"{path} must be a string or an array of content blocks.", path)
    texts: list[str] = []
    for j, block in enumerate(content):
        where = f"{path}.{j}"
        if not isinstance(block, dict):
            raise _fail(f"{where} must be an object.", where)
        kind = kind_of(block.get("type"))
        if _text_or_media(block, kind, where, conv, texts, media):
            continue
        if kind == "search_result" or kind in _IGNORED_BLOCKS:
            continue
        else:
            raise _fail(f"{where}.type {kind!r} is not supported in a tool result.",
                        f"{where}.type")
    return "\n".join(texts)


def _text_or_media(block: dict[str, Any], kind: Any, where: str, conv: Conversation,
                   texts: list[str], media: list[MediaPart]) -> bool:
    """A ``text``, ``image`` or ``document`` block, into ``texts`` or ``media``; ``False``
    for any other kind of block."""
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise _fail(f"{where}.text must be a string.", f"{where}.text")
        texts.append(text)
        return True
    if kind in ("image", "document"):
        part = _media(block, where, kind, conv, texts)
        if part is not None:
            media.append(part)
        return True
    return False


def _media(block: dict[str, Any], where: str, kind: str, conv: Conversation,
           texts: list[str]) -> MediaPart | None:
    source = block.get("source")
    if not isinstance(source, dict):
        raise _fail(f"{where}.source must be an object.", f"{where}.source")
    stype = source.get("type")
    field = f"{where}.source"
    if stype == "base64":
        data, mime = source.get("data"), source.get("media_type")
        if not isinstance(data, str) or not data:
            raise _fail(f"{field}.data must be a base64 string.", f"{field}.data")
        if not isinstance(mime, str) or not mime:
            raise _fail(f"{field}.media_type must be a string.", f"{field}.media_type")
        title = block.get("title")
        return media_from_data(0, where, f"{field}.data", data, mime,
                               title if isinstance(title, str) else "")
    if stype == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url.strip():
            raise _fail(f"{field}.url must be a string.", f"{field}.url")
        return media_from_url(0, where, f"{field}.url", url, image=kind == "image")
    if stype == "text" and kind == "document":
        data = source.get("data")
        if not isinstance(data, str):
            raise _fail(f"{field}.data must be a string.", f"{field}.data")
        title = block.get("title")
        texts.append(f"<document title=\"{title}\">\n{data}\n</document>"
                     if isinstance(title, str) and title else data)
        return None
    if stype == "content" and kind == "document":
        inner = source.get("content")
        texts.append(inner if isinstance(inner, str) else _result_text(
            inner, f"{field}.content", conv, []))
        return None
    if stype == "file":
        raise _fail(f"{field}.file_id cannot be resolved: this server has no Files API. Send "
                    "the data inline (base64) or as a URL instead.", f"{field}.file_id")
    raise _fail(f"{field}.type {stype!r} is not supported; use 'base64' or 'url'.",
                f"{field}.type")


def _tools(raw: Any) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Custom tools as function definitions, web search tools' paths, other server tools'."""
    tools: list[dict[str, Any]] = []
    searches: list[str] = []
    dropped: list[str] = []
    if raw is None:
        return tools, searches, dropped
    if not isinstance(raw, list):
        raise _fail("'tools' must be an array of tools.", "tools")
    for i, tool in enumerate(raw):
        where = f"tools.{i}"
        if not isinstance(tool, dict):
            raise _fail(f"{where} must be an object.", where)
        kind = tool.get("type")
        if kind is not None and not isinstance(kind, str):
            raise _fail(f"{where}.type must be a string.", f"{where}.type")
        if kind not in (None, "custom"):
            if kind.startswith("web_search"):
                searches.append(where)
            else:
                dropped.append(f"{where}({kind})")
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _fail(f"{where}.name must be a non-empty string.", f"{where}.name")
        description = tool.get("description") or ""
        if not isinstance(description, str):
            raise _fail(f"{where}.description must be a string.", f"{where}.description")
        schema = tool.get("input_schema")
        if schema is None:
            schema = {"type": "object", "properties": {}}
        if not isinstance(schema, dict):
            raise _fail(f"{where}.input_schema must be a JSON schema object.",
                        f"{where}.input_schema")
        schema = {k: v for k, v in schema.items() if k != "$schema"}
        schema.setdefault("type", "object")
        if schema["type"] == "object" and not isinstance(schema.get("properties"), dict):
            schema["properties"] = {}
        if any(t["name"] == name.strip() for t in tools):
            raise _fail(f"Duplicate tool name {name!r}.", f"{where}.name")
        tools.append({"name": name.strip(), "description": description, "parameters": schema})
    return tools, searches, dropped


def _tool_choice(choice: Any, tools: list[dict[str, Any]]) -> ToolOptions:
    opts = ToolOptions(tools=tools)
    if choice is None:
        return opts
    if not isinstance(choice, dict):
        raise _fail("'tool_choice' must be an object such as {\"type\": \"auto\"}.",
                    "tool_choice")
    kind = choice.get("type")
    if kind == "auto":
        opts.choice = "auto"
    elif kind == "any":
        opts.choice = "required"
    elif kind == "none":
        opts.choice = "none"
    elif kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not any(t["name"] == name for t in tools):
            raise _fail("tool_choice.name must name one of 'tools'.", "tool_choice.name")
        opts.choice, opts.named = name, True
    else:
        raise _fail("tool_choice.type must be 'auto', 'any', 'tool' or 'none'.",
                    "tool_choice.type")
    if (opts.choice == "required" or opts.named) and not tools:
        raise _fail("'tool_choice' asks for a tool call but 'tools' is empty.", "tool_choice")
    if choice.get("disable_parallel_tool_use") is True:
        opts.parallel = False
    return opts
