"""Tool calling over Poe: request side, native ``json`` events, the XML fallback. Pure: no I/O.

Request side
    :func:`parse_tool_options` reads ``tools`` / ``tool_choice`` /
    ``parallel_tool_calls`` (tolerant: ``description``, ``parameters``,
    ``properties`` and ``required`` may be missing). :func:`apply_tools` then
    rewrites the Poe query built by ``build_poe_query``: the tool-call history
    and, per model, either Poe's native ``tools`` field or the XML prompt.

History, native mode (what Poe documents for server bots in "Using OpenAI function
calling", creator.poe.com/docs/server-bots/function-calling)
    * an assistant message with ``tool_calls`` → its text (if any) as a ``bot``
      message, then ``{"role": "bot", "message_type": "function_call", "content":
      "[<ToolCallDefinition>, …]"}`` (the calls as JSON text);
    * a run of ``tool`` (or legacy ``function``) messages → one ``{"role": "tool",
      "content": "[<ToolResultDefinition>, …]"}`` with entries ``{role: "tool", name,
      tool_call_id, content}``, the name looked up from the assistant's calls;
    * when the conversation *ends* with a tool round and tools are sent, that last
      round goes into the top-level ``tool_calls`` / ``tool_results`` fields instead
      (exactly what fastapi_poe sends in phase 2 of its own tool loop), not as messages.

History, XML mode
    assistant tool calls are rendered in the very XML the model is told to emit
    (:func:`render_call`), tool results as one user message of ``<tool_result>``
    elements; each result is sent once, where it happened in the conversation.

Response side
    :class:`NativeToolCalls` maps Poe's ``json`` events (``chat.completion.chunk``
    deltas) to tool-call items with contiguous indexes and ``call_<random>`` ids;
    :class:`XmlToolCalls` is the stage that finds ``<tool_call>`` blocks in the text
    stream (also when a tag is split across events), emits them as tool calls with
    arguments typed by the tool's JSON schema, and ends the answer at the first text
    after the calls.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ..errors import InvalidRequest
from ..jsonlib import JSONDecodeError, dumps_str, loads, too_deep
from .response import CONTENT, REASONING, RESET, TOOL_ARGS, TOOL_CALL, Out

if TYPE_CHECKING:
    from ..modeloptions import ResolvedModel
    from .request import ChatRequest

__all__ = ["FirstToolCallOnly", "NativeToolCalls", "ToolOptions", "XmlToolCalls",
           "apply_tools", "new_call_id", "parse_tool_options", "render_call",
           "xml_instructions"]


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
    opts = ToolOptions(tools=tools)

    choice = body.get("tool_choice")
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise InvalidRequest("'tool_choice' must be 'none', 'auto', 'required' or a "
                                 "named function.", param="tool_choice")
        opts.choice = choice
    elif isinstance(choice, dict):
        _parse_choice_object(choice, opts)
    elif choice is not None:
        raise InvalidRequest("'tool_choice' must be a string or an object.", param="tool_choice")
    if (opts.choice == "required" or opts.named) and not tools:
        raise InvalidRequest("'tool_choice' asks for a tool call but 'tools' is empty.",
                             param="tool_choice")

    messages = body.get("messages")
    if isinstance(messages, list):  # the history's calls, checked before anything is sent
        for i, msg in enumerate(messages):
            if isinstance(msg, dict) and msg.get("role") == "assistant":
                _message_calls(msg, f"messages[{i}]")

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


def _parse_choice_object(choice: dict[str, Any], opts: ToolOptions) -> None:
    kind = choice.get("type")
    if kind == "function":
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
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
    else:
        raise InvalidRequest("tool_choice must be {'type': 'function', 'function': "
                             "{'name': …}}.", param="tool_choice")


# ---------------------------------------------------------------------------------------
# Request: the conversation's tool history and the tool offer, into the Poe query
# ---------------------------------------------------------------------------------------

def _message_calls(msg: dict[str, Any], path: str) -> list[dict[str, Any]]:
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


def apply_tools(body: dict[str, Any], req: ChatRequest, model: ResolvedModel) -> None:
    """Rewrite ``body`` (from ``build_poe_query``) for tool history and the tool offer.

    ``body["query"][i]`` must be the Poe message built from ``req.messages[i]`` (its
    text already extracted, attachments attached); tool rounds are rebuilt from those.
    """
    opts: ToolOptions = getattr(req, "tool_options", None) or NO_TOOLS
    xml = model.options.tool_mode == "xml"
    messages = req.messages
    query: list[dict[str, Any]] = body["query"]
    has_history = any(
        (m.get("role") == "assistant" and (m.get("tool_calls") or m.get("function_call")))
        or m.get("role") in ("tool", "function") for m in messages
    )
    if has_history and len(query) == len(messages):
        _map_history(body, messages, query, opts, xml)
    if not opts.enabled:
        return
    if xml:
        _add_xml_prompt(body["query"], opts)
    else:
        body["tools"] = [
            {"type": "function", "function": {"name": t["name"], "description": t["description"],
                                              "parameters": t["parameters"]}}
            for t in opts.offered()
        ]


def _map_history(body: dict[str, Any], messages: list[dict[str, Any]],
                 query: list[dict[str, Any]], opts: ToolOptions, xml: bool) -> None:
    names: dict[str, str] = {}  # tool_call_id → function name
    out: list[dict[str, Any]] = []
    last_calls: list[dict[str, Any]] | None = None
    round_start = 0  # where the last assistant tool turn begins in ``out``
    i, n = 0, len(messages)
    while i < n:
        msg, poe = messages[i], query[i]
        role = msg.get("role")
        if role == "assistant" and (msg.get("tool_calls") or msg.get("function_call")):
            calls = _message_calls(msg, f"messages[{i}]")
            for call in calls:
                names[call["id"]] = call["function"]["name"]
            text = poe.get("content") or ""
            round_start = len(out)
            if xml:
                rendered = "\n".join(render_call(c["function"]["name"], c["function"]["arguments"])
                                     for c in calls)
                out.append({**poe, "content": f"{text}\n\n{rendered}" if text.strip() else rendered})
            else:
                if text.strip():
                    out.append(poe)
                out.append({"role": "bot", "message_type": "function_call",
                            "content": dumps_str(calls), "content_type": "text/markdown"})
            last_calls = calls
            i += 1
            continue
        if role in ("tool", "function"):
            results: list[dict[str, Any]] = []
            attachments: list[Any] = []
            first = poe
            while i < n and messages[i].get("role") in ("tool", "function"):
                m = messages[i]
                call_id = m.get("tool_call_id")
                if not isinstance(call_id, str):
                    call_id = ""
                name = m.get("name") if m.get("role") == "function" else None
                if not isinstance(name, str) or not name:
                    name = names.get(call_id, "unknown")
                results.append({"role": "tool", "name": name, "tool_call_id": call_id,
                                "content": query[i].get("content") or ""})
                attachments += query[i].get("attachments") or []
                i += 1
            if xml:
                merged = {**first, "role": "user", "content": render_results(results)}
            else:
                merged = {**first, "role": "tool", "content": dumps_str(results)}
            if attachments:
                merged["attachments"] = attachments
            out.append(merged)
            if i == n and not xml and opts.enabled and last_calls is not None \
                    and len(out) >= 2 and out[-2].get("message_type") == "function_call" \
                    and not attachments:
                # The conversation ends with this round: send it the way fastapi_poe's
                # tool loop does, in the top-level fields, with the query as it was before
                # the round (the assistant's text of that turn included, so the query does
                # not end with a bot message).
                del out[round_start:]
                body["tool_calls"] = last_calls
                body["tool_results"] = results
            continue
        out.append(poe)
        i += 1
    query[:] = out


def render_call(name: str, arguments: str) -> str:
    """One tool call in the XML format the model is told to use."""
    try:
        args = loads(arguments) if arguments.strip() else {}
    except JSONDecodeError:
        args = None
    if too_deep(args) is not None:  # parses, but could not be written back as JSON
        args = None
    lines = ["<tool_call>", f'<invoke name="{_attr(name)}">']
    if isinstance(args, dict):
        for key, value in args.items():
            text = value if isinstance(value, str) else dumps_str(value)
            lines.append(f'<parameter name="{_attr(str(key))}">{text}</parameter>')
    else:  # not a JSON object: give the bot the raw text
        lines.append(arguments)
    lines += ["</invoke>", "</tool_call>"]
    return "\n".join(lines)


def render_results(results: list[dict[str, Any]]) -> str:
    parts = ["<tool_results>"]
    for r in results:
        parts.append(f'<tool_result name="{_attr(r["name"])}" '
                     f'tool_call_id="{_attr(r["tool_call_id"])}">\n{r["content"]}\n</tool_result>')
    parts.append("</tool_results>")
    return "\n".join(parts)


def _attr(value: str) -> str:
    return (value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            .replace(">", "&gt;"))


def xml_instructions(opts: ToolOptions) -> str:
    """The instruction block that teaches a bot without native tools to call them."""
    tools = opts.offered()
    defs = []
    for t in tools:
        desc = t["description"].strip()
        defs.append(
            f'<tool name="{_attr(t["name"])}">\n'
            + (f"<description>{desc}</description>\n" if desc else "")
            + f"<parameters>{dumps_str(t['parameters'])}</parameters>\n</tool>"
        )
    if opts.named:
        rule = f'In this reply you MUST call the tool "{opts.choice}".'
    elif opts.choice == "required":
        rule = "In this reply you MUST call at least one tool."
    else:
        rule = ("Call a tool only when it helps; when you can answer directly, answer "
                "normally without any <tool_call> block.")
    many = ("To make several calls, write several <tool_call> blocks one after another."
            if opts.parallel else "Make at most one tool call per reply.")
    return (
        "# Tools\n\n"
        "You can call the tools described below. To call a tool, write a block in exactly "
        "this format:\n\n"
        "<tool_call>\n"
        '<invoke name="TOOL_NAME">\n'
        '<parameter name="PARAMETER_NAME">VALUE</parameter>\n'
        "</invoke>\n"
        "</tool_call>\n\n"
        "Rules:\n"
        f"- {rule}\n"
        f"- {many}\n"
        "- One <parameter> element per argument, named as in the tool's JSON schema. "
        "Write string values as plain text, exactly as they are (no quotes, no escaping). "
        "Write numbers, booleans, arrays and objects as JSON.\n"
        "- After your tool call block(s), stop and write nothing else. The results come "
        "back in the next message inside a <tool_results> block.\n"
        "- Never write <tool_call> except to call a tool, and never invent tool results.\n\n"
        "<tools>\n" + "\n".join(defs) + "\n</tools>"
    )


def _add_xml_prompt(query: list[dict[str, Any]], opts: ToolOptions) -> None:
    block = xml_instructions(opts)
    for msg in reversed(query):
        if msg.get("role") == "user":
            text = msg.get("content") or ""
            msg["content"] = f"{text}\n\n{block}" if text else block
            return
    query.append({"role": "user", "content": block, "content_type": "text/markdown"})


# ---------------------------------------------------------------------------------------
# Response: native json events (chat.completion.chunk deltas)
# ---------------------------------------------------------------------------------------

class _Call:
    __slots__ = ("index", "length", "poe_id")

    def __init__(self, index: int, poe_id: str | None) -> None:
        self.index = index
        self.poe_id = poe_id
        self.length = 0


class NativeToolCalls:
    """Maps the ``json`` events of one answer to output items.

    Poe's indexes are remapped to our own (unique, contiguous from 0, in order of
    first appearance); a delta that reuses an index with a different id starts a new
    call. A call's first delta must name the function; argument fragments that come
    before the name are kept until it arrives.
    """

    __slots__ = ("_all", "_by_poe", "_orphans", "finish_reason", "usage")

    def __init__(self) -> None:
        self._by_poe: dict[Any, _Call] = {}  # Poe's index → its current call
        self._orphans: dict[Any, tuple[str, str | None]] = {}  # before the name: args, id
        self._all: list[_Call] = []
        #: The ``usage`` object of a trailing usage chunk, when Poe sends one.
        self.usage: dict[str, Any] | None = None
        #: ``length`` or ``content_filter`` when the bot's chunks say so.
        self.finish_reason: str | None = None

    @property
    def calls(self) -> int:
        return len(self._all)

    def feed(self, data: dict[str, Any]) -> list[Out]:
        out: list[Out] = []
        usage = data.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        choices = data.get("choices")
        if not isinstance(choices, list):
            return out
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index") not in (0, None):
                continue
            if choice.get("finish_reason") in ("length", "content_filter"):
                self.finish_reason = choice["finish_reason"]
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                delta = choice.get("message")
                if not isinstance(delta, dict):
                    continue
            thinking = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thinking, str) and thinking:
                out.append((REASONING, thinking))
            content = delta.get("content")
            if isinstance(content, str) and content:
                out.append((CONTENT, content))
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for pos, call in enumerate(calls):
                    if isinstance(call, dict):
                        self._delta(call, pos, out)
        return out

    def _delta(self, call: dict[str, Any], pos: int, out: list[Out]) -> None:
        key = call.get("index", pos)
        if isinstance(key, bool) or not isinstance(key, int | str):
            key = pos
        fn = call.get("function")
        if not isinstance(fn, dict):
            fn = {}
        name = fn.get("name")
        args = fn.get("arguments")
        if args is None:
            args = ""
        elif not isinstance(args, str):
            args = dumps_str(args)
        poe_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
        current = self._by_poe.get(key)
        named = isinstance(name, str) and bool(name)
        if current is None or (named and poe_id is not None and poe_id != current.poe_id):
            if not named:
                prev_args, prev_id = self._orphans.get(key, ("", None))
                self._orphans[key] = (prev_args + args, prev_id or poe_id)
                return
            orphan_args, orphan_id = self._orphans.pop(key, ("", None))
            poe_id = poe_id or orphan_id
            current = _Call(len(self._all), poe_id)
            self._all.append(current)
            self._by_poe[key] = current
            out.append((TOOL_CALL, current.index, poe_id or new_call_id(), name))
            args = orphan_args + args
        if args:
            current.length += len(args)
            out.append((TOOL_ARGS, current.index, args))

    def finish(self) -> list[Out]:
        """``"{}"`` for calls that got no arguments at all (clients parse them as JSON)."""
        return [(TOOL_ARGS, c.index, "{}") for c in self._all if not c.length]


class FirstToolCallOnly:
    """Stage for ``parallel_tool_calls: false``: only the first call gets through."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = True

    def feed(self, items: list[Out]) -> list[Out]:
        return [it for it in items if not (it[0] in (TOOL_CALL, TOOL_ARGS) and it[1] > 0)]

    def flush(self) -> list[Out]:
        return []


# ---------------------------------------------------------------------------------------
# Response: the XML fallback
# ---------------------------------------------------------------------------------------

_OPEN: Final = ("<tool_call>", "<function_calls>")
_CLOSE: Final = {"<tool_call>": "</tool_call>", "<function_calls>": "</function_calls>"}
_TAG_MAX: Final = max(map(len, _OPEN))
#: A tool-call block longer than this is given up on and shown as text.
MAX_BLOCK: Final = 1 << 20

_FENCE_PREFIX = re.compile(r"[ \t]*(?:`{1,2}|```[\w+-]*[ \t]*)")
_FENCE_NL = re.compile(r"[ \t]*```[\w+-]*[ \t]*\r?\n")
_INVOKE = re.compile(r"""<invoke\s+name\s*=\s*["']([^"']+)["']\s*/?>(.*?)(?:</invoke>|(?=<invoke\s)|\Z)""",
                     re.S)
_PARAM = re.compile(r"""<parameter\s+name\s*=\s*["']([^"']+)["']\s*>(.*?)</parameter>""", re.S)
_NAME_TAG = re.compile(r"<(?:name|tool_name)>\s*(.*?)\s*</(?:name|tool_name)>", re.S)
_ARGS_TAG = re.compile(r"<(?:arguments|parameters)>(.*?)</(?:arguments|parameters)>", re.S)

_TEXT, _CALL, _AFTER = 0, 1, 2


class XmlToolCalls:
    """Stage: ``<tool_call>`` blocks in the content → tool calls.

    Text streams through untouched except what could still be the start of a
    block (a partial ``<tool_call>`` tag, trailing blanks, an opening code fence
    line), which is held until it is known. A block is parsed when it closes;
    after the last call, the first text that is not another block ends the answer
    (``finished``), so a model that goes on with made-up results is cut off.
    """

    #: This stage turns text into tool calls (the translator then watches for them).
    makes_tool_calls: Final = True

    __slots__ = ("_at_line_start", "_buf", "_index", "_open", "_opts", "_pre", "_state",
                 "active", "finished")

    def __init__(self, opts: ToolOptions) -> None:
        self._opts = opts
        self.active = True
        self.finished = False
        self._state = _TEXT
        self._buf = ""
        self._open = ""
        self._pre = ""  # blanks / a fence line held back before the open tag
        self._index = 0
        self._at_line_start = True

    def feed(self, items: list[Out]) -> list[Out]:
        out: list[Out] = []
        for item in items:
            kind = item[0]
            if kind == CONTENT:
                if not self.finished:
                    self._text(item[1], out)
            elif kind == RESET:
                self._state, self._buf = _TEXT, ""
                self._at_line_start = True
                self.finished = False
                out.append(item)
            elif not self.finished:
                out.append(item)
        return out

    def flush(self) -> list[Out]:
        out: list[Out] = []
        buf, self._buf = self._buf, ""
        if self.finished:
            return out
        if self._state == _TEXT:
            if buf:
                out.append((CONTENT, buf))
        elif self._state == _CALL:
            # The answer ended inside a block: use it if it parses, else show it.
            if not self._emit_block(buf, out):
                out.append((CONTENT, self._pre + self._open + buf))
        return out

    # -- internals --------------------------------------------------------------------

    def _emit_text(self, text: str, out: list[Out]) -> None:
        if text:
            out.append((CONTENT, text))
            self._at_line_start = text.endswith("\n")

    def _text(self, text: str, out: list[Out]) -> None:
        buf = self._buf + text
        while True:
            if self._state == _TEXT:
                pos, tag = _find_open(buf)
                if pos < 0:
                    hold = self._hold_start(buf)
                    self._emit_text(buf[:hold], out)
                    self._buf = buf[hold:]
                    return
                cut = self._cut_before(buf, pos)
                self._emit_text(buf[:cut], out)
                self._state, self._open, self._pre = _CALL, tag, buf[cut:pos]
                buf = buf[pos + len(tag):]
            elif self._state == _CALL:
                body = buf.lstrip()
                if body and body[0] not in "<{":
                    # Not a call (a block starts with a tag or JSON): the tag was prose.
                    self._state = _TEXT
                    self._emit_text(self._pre + self._open, out)
                    continue
                close = _CLOSE[self._open]
                end = _find_close(buf, close)
                if end < 0:
                    if len(buf) > MAX_BLOCK:
                        self._state = _TEXT
                        self._emit_text(self._pre + self._open + buf, out)
                        self._buf = ""
                        return
                    self._buf = buf
                    return
                block, buf = buf[:end], buf[end + len(close):]
                if self._emit_block(block, out):
                    self._state = _AFTER
                    if not self._opts.parallel:
                        self._finish()
                        return
                else:
                    self._state = _TEXT
                    self._emit_text(self._pre + self._open + block + close, out)
            else:  # _AFTER: only more blocks may follow
                rest = _skip_fences(buf.lstrip())
                if rest is None:  # could still be a fence line
                    self._buf = buf
                    return
                if not rest:
                    self._buf = ""
                    return
                nxt = next((t for t in _OPEN if rest.startswith(t)), None)
                if nxt is not None:
                    self._state, self._open, self._pre = _CALL, nxt, ""
                    buf = rest[len(nxt):]
                    continue
                if any(t.startswith(rest) for t in _OPEN):
                    self._buf = rest
                    return
                self._finish()
                return

    def _finish(self) -> None:
        self.finished = True
        self._buf = ""

    def _hold_start(self, buf: str) -> int:
        """Where the part of ``buf`` that could still begin a block starts.

        That part is: blanks, an opening code-fence line, blanks, a partial tag.
        """
        hold = len(buf.rstrip())
        lt = buf.rfind("<", max(0, len(buf) - _TAG_MAX))
        if lt >= 0 and any(t.startswith(buf[lt:]) for t in _OPEN):
            hold = min(hold, lt)
        hold = len(buf[:hold].rstrip())
        start = buf.rfind("\n", 0, hold) + 1
        if (start > 0 or self._at_line_start) and _FENCE_PREFIX.fullmatch(buf[start:hold]):
            hold = len(buf[:start].rstrip())
        return hold

    def _cut_before(self, buf: str, pos: int) -> int:
        """Where the text before a block ends: without trailing blanks and an opening fence."""
        cut = len(buf[:pos].rstrip())
        start = buf.rfind("\n", 0, cut) + 1
        if (start > 0 or self._at_line_start) and _FENCE_PREFIX.fullmatch(buf[start:cut]):
            cut = len(buf[:start].rstrip())
        return cut

    def _emit_block(self, block: str, out: list[Out]) -> bool:
        calls = parse_block(block, self._opts)
        if not calls:
            return False
        for name, args in calls:
            if not self._opts.parallel and self._index > 0:
                break
            index = self._index
            self._index += 1
            out.append((TOOL_CALL, index, new_call_id(), name))
            out.append((TOOL_ARGS, index, dumps_str(args)))
        return True


def _find_close(buf: str, close: str) -> int:
    """The first ``close`` tag outside a ``<parameter>`` value (so a value that quotes
    ``</tool_call>`` does not end the block); -1 while there is none."""
    end = buf.find(close)
    while end >= 0 and buf.count("<parameter", 0, end) > buf.count("</parameter>", 0, end):
        end = buf.find(close, end + len(close))
    return end


def _find_open(buf: str) -> tuple[int, str]:
    best, tag = -1, ""
    for t in _OPEN:
        pos = buf.find(t)
        if pos >= 0 and (best < 0 or pos < best):
            best, tag = pos, t
    return best, tag


def _skip_fences(text: str) -> str | None:
    """``text`` without leading code-fence lines; ``None`` while a fence line is incomplete."""
    while text.startswith("`"):
        m = _FENCE_NL.match(text)
        if m is None:
            if _FENCE_PREFIX.fullmatch(text):
                return None
            return text
        text = text[m.end():].lstrip()
    return text


def parse_block(block: str, opts: ToolOptions) -> list[tuple[str, dict[str, Any]]]:
    """The calls in the body of one ``<tool_call>`` block, arguments typed by the schemas."""
    calls: list[tuple[str, dict[str, Any]]] = []
    body = block.strip()
    if body.startswith("{"):  # {"name": …, "arguments": {…}} (Hermes / Qwen style)
        try:
            obj = loads(body)
        except JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("name"), str):
            raw_args = obj.get("arguments", obj.get("parameters", {}))
            if isinstance(raw_args, str):
                try:
                    raw_args = loads(raw_args)
                except JSONDecodeError:
                    raw_args = None
            if isinstance(raw_args, dict):
                props = _properties(opts.find(obj["name"].strip()))
                typed: dict[str, Any] = {}
                for key, value in raw_args.items():
                    # Strings where the schema wants numbers or booleans get converted too.
                    if isinstance(value, str) and props.get(key) is not None:
                        value = _typed(value, props.get(key))
                    if value is not _SKIP:
                        typed[key] = value
                calls.append((_tool_name(obj["name"], opts), typed))
        return calls
    for m in _INVOKE.finditer(body):
        name = _unescape(m.group(1).strip())
        tool = opts.find(name)
        props = _properties(tool)
        args: dict[str, Any] = {}
        inner = m.group(2)
        for p in _PARAM.finditer(inner):
            key = _unescape(p.group(1).strip())
            value = _typed(p.group(2), props.get(key))
            if value is not _SKIP:
                args[key] = value
        if _PARAM.sub("", inner).strip():
            return []  # an unclosed or stray part: not a well-formed call, shown as text
        calls.append((tool["name"] if tool else name, args))
    if calls:
        if _INVOKE.sub("", body).strip():
            return []
        return calls
    nm = _NAME_TAG.search(body)
    if nm:
        name = _tool_name(nm.group(1), opts)
        am = _ARGS_TAG.search(body)
        args = {}
        if am:
            try:
                parsed = loads(am.group(1).strip() or "{}")
            except JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):
                args = parsed
        calls.append((name, args))
        return calls
    # <tool_call><get_weather><city>Paris</city></get_weather></tool_call>
    m2 = re.fullmatch(r"<([\w.-]+)>(.*)</\1>", body, re.S)
    if m2 and opts.find(m2.group(1)):
        tool = opts.find(m2.group(1))
        assert tool is not None
        props = _properties(tool)
        args = {}
        for pm in re.finditer(r"<([\w.-]+)>(.*?)</\1>", m2.group(2), re.S):
            value = _typed(pm.group(2), props.get(pm.group(1)))
            if value is not _SKIP:
                args[pm.group(1)] = value
        calls.append((tool["name"], args))
    return calls


def _tool_name(name: str, opts: ToolOptions) -> str:
    tool = opts.find(name.strip())
    return tool["name"] if tool else name.strip()


def _properties(tool: dict[str, Any] | None) -> dict[str, Any]:
    if tool is None:
        return {}
    props = tool["parameters"].get("properties")
    return props if isinstance(props, dict) else {}


def _unescape(text: str) -> str:
    return (text.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
            .replace("&apos;", "'").replace("&amp;", "&"))


_SKIP: Final = object()


def _schema_types(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    t = schema.get("type")
    types: set[str] = set()
    if isinstance(t, str):
        types.add(t)
    elif isinstance(t, list):
        types.update(x for x in t if isinstance(x, str))
    for key in ("anyOf", "oneOf", "allOf"):
        subs = schema.get(key)
        if isinstance(subs, list):
            for sub in subs:
                types |= _schema_types(sub)
    if not types:
        if "enum" in schema and isinstance(schema["enum"], list):
            types.update(_json_type(v) for v in schema["enum"])
        elif "properties" in schema:
            types.add("object")
        elif "items" in schema:
            types.add("array")
    return types


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


def _typed(raw: str, schema: Any) -> Any:
    """An XML parameter's text as the JSON value its schema asks for."""
    types = _schema_types(schema)
    if types == {"string"} or types == {"string", "null"}:
        if types == {"string", "null"} and raw.strip() == "null":
            return None
        if len(raw) >= 2 and raw.startswith("\n") and raw.endswith("\n"):
            return raw[1:-1]  # the value was written on lines of its own
        return raw
    text = raw.strip()
    if not text:
        return "" if (not types or "string" in types) else _SKIP
    value: Any
    try:
        value = loads(text)
    except JSONDecodeError:
        value = _SKIP
    if value is not _SKIP:
        vt = _json_type(value)
        if not types or vt in types or (vt == "integer" and "number" in types):
            return value
        if vt == "number" and "integer" in types and float(value).is_integer():
            return int(value)
    low = text.lower()
    if "boolean" in types and low in ("true", "false", "yes", "no"):
        return low in ("true", "yes")
    if "string" in types or not types:
        return raw if "string" in types else text
    if value is not _SKIP:
        return value
    return text  # not what the schema wants; let the client's validation say so
