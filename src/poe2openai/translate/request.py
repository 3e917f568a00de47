"""The Chat Completions face's requests → neutral conversation. Pure: no I/O.

:func:`parse_chat_request` validates the client's JSON (400 with ``param`` on anything
malformed; everything is checked here, before any upload) and returns a
:class:`~.conversation.Conversation`; :func:`~.query.build_poe_query` turns that into
the body of ``POST /bot/{name}``.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import InvalidRequest
from .attachments import MEDIA_PARTS, TEXT_PARTS, collect_media
from .conversation import Conversation, Role, ToolCall, Turn
from .fields import model_name, request_object, stream_flag
from .params import collect_candidates
from .query import build_poe_query
from .structured import forced_tool_format, parse_chat_format
from .tooloptions import message_calls, parse_tool_options

__all__ = ["build_poe_query", "content_text", "parse_chat_request"]

#: Parameters this module reads itself; every other one a request carries is accepted,
#: has no effect, and is named in the ``x-dropped-params`` response header.
_KNOWN = frozenset({"model", "messages", "stream", "stream_options", "temperature", "stop", "n",
                    "response_format",
                    "logit_bias", "tools", "tool_choice", "parallel_tool_calls"})

_ROLES: dict[str, Role] = {"system": "system", "developer": "system", "user": "user",
                           "assistant": "assistant", "tool": "tool", "function": "tool"}


def parse_chat_request(body: Any) -> Conversation:
    body = request_object(body)
    model = model_name(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise InvalidRequest(f"messages[{i}] must be an object.", param=f"messages[{i}]")
        role = msg.get("role")
        if not isinstance(role, str) or role not in _ROLES:  # a list cannot be looked up
            raise InvalidRequest(
                f"messages[{i}].role must be one of {', '.join(_ROLES)}; got {role!r}.",
                param=f"messages[{i}].role",
            )
    req = Conversation(model=model, turns=[_turn(msg, i) for i, msg in enumerate(messages)])
    req.media = collect_media(messages)
    if not any(t.role != "assistant" or t.text.strip() or t.calls for t in req.turns) \
            and not req.media:
        raise InvalidRequest("'messages' has nothing to send: every message is an assistant "
                             "turn without content.", param="messages")

    req.stream = stream_flag(body)
    opts = body.get("stream_options")
    if opts is not None:
        if not isinstance(opts, dict):
            raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
        req.stream_usage = opts.get("include_usage") is True

    n = body.get("n")
    if n is not None:  # an integer; 1.0 is one too (as in JSON Schema)
        if (not isinstance(n, int | float) or isinstance(n, bool) or not math.isfinite(n)
                or n != int(n) or n < 1):
            raise InvalidRequest("'n' must be a positive integer.", param="n")
        if n > 1:
            raise InvalidRequest("Poe bots return one choice; 'n' must be 1.", param="n")

    temperature = body.get("temperature")
    if temperature is not None:
        if (not isinstance(temperature, int | float) or isinstance(temperature, bool)
                or not math.isfinite(temperature) or not 0 <= temperature <= 2):
            raise InvalidRequest("'temperature' must be a number between 0 and 2.",
                                 param="temperature")
        req.temperature = float(temperature)

    stop = body.get("stop")
    if isinstance(stop, str):
        req.stop = [stop] if stop else []
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        req.stop = [s for s in stop if s]
    elif stop is not None:
        raise InvalidRequest("'stop' must be a string or an array of strings.", param="stop")

    bias = body.get("logit_bias")
    if bias is not None:
        if not isinstance(bias, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in bias.values()
        ):
            raise InvalidRequest("'logit_bias' must map token ids to numbers.", param="logit_bias")
        req.logit_bias = {str(k): float(v) for k, v in bias.items()}

    req.tools = parse_tool_options(body)
    # A forced tool call is structured output too, and it wins over response_format: the
    # answer is the call, with no content for a format to apply to (as OpenAI does it).
    content_format = parse_chat_format(body.get("response_format"))  # checked either way
    req.output_format = forced_tool_format(req.tools) or content_format
    req.param_candidates = collect_candidates(body)
    req.dropped = sorted(k for k in body if k not in _KNOWN and body[k] is not None)
    return req


def _turn(msg: dict[str, Any], i: int) -> Turn:
    role = _ROLES[msg["role"]]
    turn = Turn(role, content_text(msg.get("content"), f"messages[{i}].content"))
    if role == "assistant" and (msg.get("tool_calls") or msg.get("function_call")):
        turn.calls = [ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"])
                      for c in message_calls(msg, f"messages[{i}]")]
    elif role == "tool":
        call_id = msg.get("tool_call_id")
        turn.call_id = call_id if isinstance(call_id, str) else ""
        name = msg.get("name") if msg["role"] == "function" else None
        turn.name = name if isinstance(name, str) else ""
    return turn


def content_text(content: Any, path: str) -> str:
    """The text of a message ``content``: a string, ``null``, or a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{path} must be a string, null or an array of content parts.",
                             param=path)
    texts: list[str] = []
    for j, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            raise InvalidRequest(f"{path}[{j}] must be an object.", param=f"{path}[{j}]")
        kind = part.get("type")
        if not isinstance(kind, str):  # a list or an object cannot be looked up
            raise InvalidRequest(f"{path}[{j}].type must be a string such as 'text', "
                                 f"'image_url' or 'file'; got {repr(kind)[:40]}.",
                                 param=f"{path}[{j}].type")
        if kind in TEXT_PARTS:
            field = "refusal" if kind == "refusal" else "text"
            text = part.get(field)
            if not isinstance(text, str):
                raise InvalidRequest(f"{path}[{j}].{field} must be a string.",
                                     param=f"{path}[{j}].{field}")
            texts.append(text)
        elif kind in MEDIA_PARTS:
            continue  # becomes an attachment (collect_media)
        else:
            raise InvalidRequest(
                f"Content part type {kind!r} is not supported.", param=f"{path}[{j}].type"
            )
    return "\n".join(texts)
