"""The Responses face's requests (``POST /v1/responses``) → neutral conversation, and a
stored response's answer → conversation turns (:func:`output_turns`, for
``previous_response_id``). Pure: no I/O.

``input`` is a string or a list of items: messages (``input_text``, ``input_image``,
``input_file``, ``output_text``, ``refusal`` parts), ``function_call`` /
``function_call_output``, ``custom_tool_call`` / ``custom_tool_call_output``, and items
that are accepted with nothing for the bot (``reasoning``, ``item_reference``, built-in
tool calls). A malformed item is a 400 naming its path, e.g. ``input[3].content[0].type``.

Tools: function tools as in Chat; free-form (``custom``) tools become a function with one
string argument ``input`` whose description carries the grammar; ``namespace`` tools
offer their function tools under their own names; built-in tools (``web_search`` …) map
to the bot's own ``web_search`` parameter where it has one, and are otherwise left out
and named in ``x-dropped-params``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from ..errors import InvalidRequest
from ..jsonlib import dumps_str
from .attachments import MediaPart, media_from_url
from .conversation import Conversation, ToolCall, Turn
from .fields import kind_of, model_name, request_object, stream_flag
from .params import Candidate, collect_candidates
from .responses_encode import ResponseSettings
from .responses_tools import ToolOffer
from .structured import forced_tool_format, parse_text_format
from .tooloptions import parse_tool_choice

__all__ = ["RESPONSES_FIELDS", "ResponsesRequest", "output_turns", "parse_responses_request"]

#: Responses request fields. They are never sent as bot parameters.
RESPONSES_FIELDS: Final = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls",
    "reasoning", "max_output_tokens", "max_tool_calls", "temperature", "top_p",
    "top_logprobs", "text", "store", "previous_response_id", "include", "prompt_cache_key",
    "prompt_cache_retention", "metadata", "user", "safety_identifier", "truncation",
    "service_tier", "stream", "stream_options", "background", "conversation", "prompt",
    "client_metadata",
})
#: Fields read here (the rest of RESPONSES_FIELDS is accepted and named as dropped).
_READ: Final = frozenset({"model", "input", "instructions", "tools", "tool_choice",
                          "parallel_tool_calls", "reasoning", "temperature", "text", "store",
                          "previous_response_id", "stream", "max_output_tokens"})
#: Input items that carry nothing for the bot; accepted so that clients can send back
#: whatever they were given.
_IGNORED_ITEMS: Final = frozenset({
    "reasoning", "item_reference", "web_search_call", "file_search_call", "tool_search_call",
    "tool_search_output", "image_generation_call", "code_interpreter_call", "local_shell_call",
    "local_shell_call_output", "computer_call", "computer_call_output", "mcp_list_tools",
    "mcp_call", "mcp_approval_request", "mcp_approval_response", "compaction",
    "compaction_summary",
})
_ROLES: Final = {"user": "user", "system": "system", "developer": "system",
                 "assistant": "assistant"}
_TEXT_PARTS: Final = frozenset({"input_text", "output_text", "text", "summary_text",
                                "reasoning_text"})

@dataclass(slots=True)
class ResponsesRequest:
    conv: Conversation
    settings: ResponseSettings
    previous_response_id: str | None


def _fail(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def parse_responses_request(body: Any) -> ResponsesRequest:
    body = request_object(body)
    model = model_name(body)
    conv = Conversation(model=model, turns=[])
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _fail("'instructions' must be a string.", "instructions")
    if instructions:
        conv.turns.append(Turn("system", instructions))

    offer = ToolOffer()
    raw_tools = body.get("tools")
    if raw_tools is not None:
        if not isinstance(raw_tools, list):
            raise _fail("'tools' must be an array of tool objects.", "tools")
        offer.add(raw_tools, "tools")
    tools, custom, searches = offer.tools, offer.custom, offer.searches
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        conv.turns.append(Turn("user", raw_input))
    elif isinstance(raw_input, list):
        for i, item in enumerate(raw_input):
            _item(conv, item, f"input[{i}]", offer)
    elif raw_input is not None:
        raise _fail("'input' must be a string or an array of input items.", "input")
    conv.tools = parse_tool_choice(body.get("tool_choice"), tools,
                                   allow_custom=True)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise _fail("'parallel_tool_calls' must be a boolean.", "parallel_tool_calls")
        conv.tools.parallel = parallel

    conv.stream = stream_flag(body)
    if body.get("background") is True:
        raise _fail("Background responses are not supported; send 'background': false.",
                    "background")
    temperature = _number(body, "temperature", 0, 2)
    conv.temperature = temperature
    max_out = body.get("max_output_tokens")
    if max_out is not None and (isinstance(max_out, bool) or not isinstance(max_out, int)
                                or max_out < 1):
        raise _fail("'max_output_tokens' must be a positive integer.", "max_output_tokens")
    conv.max_tokens = max_out
    store = body.get("store", True)
    if store is not None and not isinstance(store, bool):
        raise _fail("'store' must be a boolean.", "store")
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise _fail("'previous_response_id' must be a string.", "previous_response_id")
    include = body.get("include")
    if include is not None and not (isinstance(include, list)
                                    and all(isinstance(x, str) for x in include)):
        raise _fail("'include' must be an array of strings.", "include")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _fail("'metadata' must be an object.", "metadata")

    reasoning = body.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, dict):
        raise _fail("'reasoning' must be an object such as {\"effort\": \"low\"}.", "reasoning")
    text = body.get("text")
    if text is not None and not isinstance(text, dict):
        raise _fail("'text' must be an object.", "text")
    candidates = collect_candidates(body, standard=RESPONSES_FIELDS)
    verbosity = (text or {}).get("verbosity")
    if verbosity is not None:
        if not isinstance(verbosity, str):
            raise _fail("'text.verbosity' must be a string.", "text.verbosity")
        candidates.insert(0, Candidate("verbosity", verbosity, "text.verbosity", "text"))
    if searches:
        candidates.insert(0, Candidate("web_search", True, searches[0], "tools", "if_known"))
    conv.param_candidates = candidates
    # A forced function call is structured output too, and it wins over text.format (instructor
    # sends both): the answer is the call, with no text for a format to apply to.
    text_format = parse_text_format((text or {}).get("format"))  # checked either way
    conv.output_format = forced_tool_format(conv.tools, frozenset(custom)) or text_format
    dropped = {k for k in body if k not in _READ and body[k] is not None} | set(offer.dropped)
    if max_out is not None:
        dropped.add("max_output_tokens")
    conv.dropped = sorted(dropped)
    if not any(t.role != "system" for t in conv.turns) and previous is None:
        raise _fail("'input' is required: the conversation has nothing to answer.", "input")

    echo = {
        "instructions": instructions,
        "max_output_tokens": max_out,
        "max_tool_calls": None,
        "metadata": metadata or {},
        "parallel_tool_calls": conv.tools.parallel,
        "previous_response_id": previous,
        "prompt_cache_key": body.get("prompt_cache_key") if isinstance(
            body.get("prompt_cache_key"), str) else None,
        "reasoning": {"effort": (reasoning or {}).get("effort"),
                      "summary": (reasoning or {}).get("summary")},
        "safety_identifier": None,
        "service_tier": "default",
        "temperature": 1.0 if temperature is None else temperature,
        "text": {"format": (text or {}).get("format") or {"type": "text"},
                 "verbosity": verbosity if isinstance(verbosity, str) else "medium"},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": [_echo_tool(t) for t in body.get("tools") or () if isinstance(t, dict)],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "user": None,
    }
    settings = ResponseSettings(echo, frozenset(custom), store is not False, offer.namespaces)
    return ResponsesRequest(conv, settings, previous)


def _number(body: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise _fail(f"'{key}' must be a number between {low} and {high}.", key)
    return float(value)


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type", "function") == "function":
        return {"type": "function", "name": tool.get("name"),
                "description": tool.get("description"), "parameters": tool.get("parameters"),
                "strict": tool.get("strict") if isinstance(tool.get("strict"), bool) else True}
    return tool


# ---------------------------------------------------------------------------------------
# input items
# ---------------------------------------------------------------------------------------

def _item(conv: Conversation, item: Any, path: str, offer: ToolOffer) -> None:
    if not isinstance(item, dict):
        raise _fail(f"{path} must be an object.", path)
    raw = item.get("type")
    # An item without a type is a message when it has a role; a type that is not a string
    # is refused below, never taken for one.
    kind = "message" if raw is None and "role" in item else kind_of(raw)
    if kind == "message":
        _message(conv, item, path)
    elif kind in ("function_call", "custom_tool_call"):
        call_id = item.get("call_id")
        name = item.get("name")
        if not isinstance(call_id, str) or not call_id:
            raise _fail(f"{path}.call_id must be a non-empty string.", f"{path}.call_id")
        if not isinstance(name, str) or not name:
            raise _fail(f"{path}.name must be a non-empty string.", f"{path}.name")
        field = "arguments" if kind == "function_call" else "input"
        value = item.get(field)
        if value is None:
            value = ""
        elif not isinstance(value, str):
            if kind == "custom_tool_call":
                raise _fail(f"{path}.input must be a string.", f"{path}.input")
            value = dumps_str(value)
        namespace = item.get("namespace")
        if isinstance(namespace, str) and namespace:
            name = f"{namespace}__{name}"
        call = ToolCall(call_id, name, value, custom=kind == "custom_tool_call")
        last = conv.turns[-1] if conv.turns else None
        if last is not None and last.role == "assistant":
            last.calls.append(call)
        else:
            conv.turns.append(Turn("assistant", calls=[call]))
    elif kind in ("function_call_output", "custom_tool_call_output"):
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise _fail(f"{path}.call_id must be a non-empty string.", f"{path}.call_id")
        turn = Turn("tool", call_id=call_id)
        conv.turns.append(turn)
        turn.text = _content(conv, item.get("output"), f"{path}.output", len(conv.turns) - 1,
                             required=False)
    elif kind == "additional_tools":
        extra = item.get("tools")
        if not isinstance(extra, list):
            raise _fail(f"{path}.tools must be an array of tools.", f"{path}.tools")
        offer.add(extra, f"{path}.tools")
    elif kind in _IGNORED_ITEMS:
        pass  # e.g. the bot's earlier reasoning: Poe takes no such input
    else:
        raise _fail(f"{path}.type {kind!r} is not a supported input item type.", f"{path}.type")


def _message(conv: Conversation, item: dict[str, Any], path: str) -> None:
    role = kind_of(item.get("role"))
    if role not in _ROLES:
        raise _fail(f"{path}.role must be one of {', '.join(_ROLES)}; got {role!r}.",
                    f"{path}.role")
    turn = Turn(_ROLES[role])  # type: ignore[arg-type]
    conv.turns.append(turn)
    turn.text = _content(conv, item.get("content"), f"{path}.content", len(conv.turns) - 1,
                         required=True)


def _content(conv: Conversation, content: Any, path: str, index: int, *, required: bool) -> str:
    """The text of a message's (or a tool output's) content; media parts are collected."""
    if isinstance(content, str):
        return content
    if content is None and not required:
        return ""
    if not isinstance(content, list):
        raise _fail(f"{path} must be a string or an array of content parts.", path)
    texts: list[str] = []
    for j, part in enumerate(content):
        where = f"{path}[{j}]"
        if not isinstance(part, dict):
            raise _fail(f"{where} must be an object.", where)
        kind = kind_of(part.get("type"))
        if kind in _TEXT_PARTS or kind == "refusal":
            key = "refusal" if kind == "refusal" else "text"
            text = part.get(key)
            if not isinstance(text, str):
                raise _fail(f"{where}.{key} must be a string.", f"{where}.{key}")
            texts.append(text)
        elif kind == "input_image":
            conv.media.append(_image(part, where, index))
        elif kind == "input_file":
            conv.media.append(_file(part, where, index))
        else:
            raise _fail(f"{where}.type {kind!r} is not supported; use 'input_text', "
                        "'input_image' or 'input_file'.", f"{where}.type")
    return "\n".join(texts)


def _no_file_id(part: dict[str, Any], where: str) -> None:
    if part.get("file_id") is not None:
        raise _fail(f"{where}.file_id cannot be resolved: this server has no Files API. Send "
                    "the data inline (a data: URL) or as a URL instead.", f"{where}.file_id")


def _image(part: dict[str, Any], where: str, index: int) -> MediaPart:
    url = part.get("image_url")
    if isinstance(url, dict):
        url = url.get("url")
    if url is None:
        _no_file_id(part, where)
    if not isinstance(url, str) or not url.strip():
        raise _fail(f"{where}.image_url must be a string (an http(s) or data: URL).",
                    f"{where}.image_url")
    return media_from_url(index, where, f"{where}.image_url", url, image=True)


def _file(part: dict[str, Any], where: str, index: int) -> MediaPart:
    filename = part.get("filename")
    if filename is not None and not isinstance(filename, str):
        raise _fail(f"{where}.filename must be a string.", f"{where}.filename")
    for key in ("file_data", "file_url"):
        value = part.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise _fail(f"{where}.{key} must be a string.", f"{where}.{key}")
        return media_from_url(index, where, f"{where}.{key}", value, image=False,
                              filename=filename)
    _no_file_id(part, where)
    raise _fail(f"{where} needs 'file_data' (a data: URL or base64) or 'file_url'.", where)


def output_turns(response: dict[str, Any]) -> list[Turn]:
    """The answer of a finished ``response`` as conversation turns (for ``previous_response_id``)."""
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for item in response.get("output") or ():
        kind = item.get("type")
        if kind == "message":
            text += [p.get("text", "") for p in item.get("content") or ()]
        elif kind == "reasoning":
            reasoning += [p.get("text", "") for p in item.get("summary") or ()]
        elif kind in ("function_call", "custom_tool_call"):
            name = item["name"]
            if item.get("namespace"):
                name = f"{item['namespace']}__{name}"
            custom = kind == "custom_tool_call"
            calls.append(ToolCall(item["call_id"], name,
                                  item["input"] if custom else item["arguments"], custom=custom))
    return [Turn("assistant", "".join(text), calls=calls, reasoning="".join(reasoning))]
