"""Tool calls for bots without native tools: the XML protocol's answer side. Pure: no I/O.

The bot is told how to write ``<tool_call>`` blocks by :mod:`.xmlprompt`.
:class:`XmlToolCalls` is the stage that finds the blocks in the text stream (also when a
tag is split across events), emits them as tool calls with arguments typed by the tool's
JSON schema (:func:`parse_block`), and ends the answer at the first text after the calls.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ..jsonlib import JSONDecodeError, dumps_str, loads
from .items import CONTENT, RESET, TOOL_ARGS, TOOL_CALL, Out
from .schema import json_type, schema_types
from .tooloptions import ToolOptions, new_call_id

__all__ = ["MAX_BLOCK", "XmlToolCalls", "parse_block"]


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


def _typed(raw: str, schema: Any) -> Any:
    """An XML parameter's text as the JSON value its schema asks for."""
    types = schema_types(schema)
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
        vt = json_type(value)
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
