"""Neutral conversation → Poe query (``POST /bot/{name}``, protocol 1.2). Pure: no I/O.

Turns map to Poe messages: ``system`` → ``system`` (``user`` for ``replace_response``
bots), ``user`` → ``user``, ``assistant`` → ``bot``. Tool rounds, native mode (what Poe
documents for server bots in "Using OpenAI function calling"):

* an assistant turn with calls → its text (if any) as a ``bot`` message, then
  ``{"role": "bot", "message_type": "function_call", "content": "[<ToolCallDefinition>, …]"}``;
* a run of ``tool`` turns → one ``{"role": "tool", "content": "[<ToolResultDefinition>, …]"}``
  with entries ``{role: "tool", name, tool_call_id, content}``, the name looked up from the
  assistant's calls when the face did not give it;
* when the conversation *ends* with a tool round and tools are offered, that last round
  goes into the top-level ``tool_calls`` / ``tool_results`` fields instead (what
  fastapi_poe sends in phase 2 of its own tool loop), not as messages.

XML mode renders calls in the very XML the bot is told to write (:func:`.xmltools.render_call`)
and results as one user message of ``<tool_result>`` elements.

A free-form (custom) tool is offered to the bot as a function with one string argument,
``input``; its calls in the history are sent back in that shape.
"""

from __future__ import annotations

from typing import Any

from ..jsonlib import dumps_str
from ..modeloptions import ResolvedModel
from .conversation import Conversation, ToolCall
from .structured import instruction
from .tooloptions import ToolOptions
from .xmlprompt import render_call, render_results, xml_instructions

__all__ = ["PROTOCOL_VERSION", "build_poe_query", "poe_tools"]

PROTOCOL_VERSION = "1.2"

_CONTENT_TYPE = "text/markdown"


def build_poe_query(conv: Conversation, model: ResolvedModel) -> dict[str, Any]:
    """The JSON body for ``POST /bot/{model.bot}``."""
    xml = model.options.tool_mode == "xml"
    system_role = "user" if model.options.replace_response else "system"
    opts = conv.tools
    body: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "type": "query",
        "query": [],
        "user_id": "",
        "conversation_id": "",
        "message_id": "",
    }
    query: list[dict[str, Any]] = body["query"]
    names: dict[str, str] = {}  # call id → function name
    last_calls: list[dict[str, Any]] | None = None
    round_start = 0  # where the last assistant tool turn begins in ``query``
    turns = conv.turns
    i, n = 0, len(turns)
    while i < n:
        turn = turns[i]
        if turn.role == "tool":
            results: list[dict[str, Any]] = []
            attachments: list[Any] = []
            while i < n and turns[i].role == "tool":
                t = turns[i]
                results.append({"role": "tool", "name": t.name or names.get(t.call_id, "unknown"),
                                "tool_call_id": t.call_id,
                                "content": f"Error: {t.text}" if t.is_error else t.text})
                attachments += conv.attachments.get(i) or []
                i += 1
            merged = _message("user" if xml else "tool",
                              render_results(results) if xml else dumps_str(results), None)
            if attachments:
                merged["attachments"] = attachments
            query.append(merged)
            if i == n and not xml and opts.enabled and last_calls is not None \
                    and len(query) >= 2 and query[-2].get("message_type") == "function_call" \
                    and not attachments and round_start > 0:  # (Poe refuses an empty query)
                # The conversation ends with this round: send it the way fastapi_poe's tool
                # loop does, in the top-level fields, with the query as it was before the
                # round (the assistant's text of that turn included, so that the query does
                # not end with a bot message).
                del query[round_start:]
                body["tool_calls"] = last_calls
                body["tool_results"] = results
            continue
        attached = conv.attachments.get(i)
        if turn.role == "assistant" and turn.calls:
            calls = [_call_definition(c) for c in turn.calls]
            for call in calls:
                names[call["id"]] = call["function"]["name"]
            round_start = len(query)
            if xml:
                rendered = "\n".join(render_call(c["function"]["name"], c["function"]["arguments"])
                                     for c in calls)
                text = f"{turn.text}\n\n{rendered}" if turn.text.strip() else rendered
                query.append(_message("bot", text, attached))
            else:
                if turn.text.strip() or attached:
                    query.append(_message("bot", turn.text, attached))
                query.append({"role": "bot", "message_type": "function_call",
                              "content": dumps_str(calls), "content_type": _CONTENT_TYPE})
            last_calls = calls
        elif turn.role == "assistant":
            # An assistant turn with nothing in it says nothing to the bot; an empty bot
            # message would only confuse it.
            if turn.text.strip() or attached:
                query.append(_message("bot", turn.text, attached))
        else:
            query.append(_message(system_role if turn.role == "system" else "user", turn.text,
                                  attached))
        i += 1

    if conv.temperature is not None:
        body["temperature"] = conv.temperature
    if conv.stop:
        body["stop_sequences"] = conv.stop
    if conv.logit_bias:
        body["logit_bias"] = conv.logit_bias
    if opts.enabled:
        if xml:
            _add_to_last_user_message(query, xml_instructions(opts))
        else:
            body["tools"] = poe_tools(opts)
    if conv.output_format is not None and not conv.native_format:
        _add_to_last_user_message(query, instruction(conv.output_format))
    return body


def _message(role: str, text: str, attachments: list[dict[str, Any]] | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": role, "content": text, "content_type": _CONTENT_TYPE}
    if attachments:
        message["attachments"] = attachments
    return message


def _call_definition(call: ToolCall) -> dict[str, Any]:
    args = dumps_str({"input": call.arguments}) if call.custom else (call.arguments or "{}")
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": args}}


def poe_tools(opts: ToolOptions) -> list[dict[str, Any]]:
    """Poe's native ``tools`` field: the offered tools as OpenAI function definitions."""
    return [{"type": "function", "function": {"name": t["name"], "description": t["description"],
                                              "parameters": t["parameters"]}}
            for t in opts.offered()]


def _add_to_last_user_message(query: list[dict[str, Any]], block: str) -> None:
    """Instructions go at the end of the last user message, where a bot's own system prompt
    cannot push them out."""
    for msg in reversed(query):
        if msg.get("role") == "user":
            text = msg.get("content") or ""
            msg["content"] = f"{text}\n\n{block}" if text else block
            return
    query.append({"role": "user", "content": block, "content_type": _CONTENT_TYPE})
