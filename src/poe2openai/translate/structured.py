"""Structured output for every bot: ``response_format`` (Chat) and ``text.format``
(Responses). Pure: no I/O.

Poe's bot protocol has no such field, so the bot is told what to produce: an instruction
with the schema goes at the end of the last user message (where a bot's own system prompt
cannot push it out), unless the bot publishes a native parameter for it. The answer's JSON
is then found (:func:`extract`: code fences, prose before or after, a ``<think>`` block),
validated with ``jsonschema`` (:func:`problem`), and, when it is invalid, the bot is asked
again with the validator's error (:func:`repair_query`). :class:`JsonStage` is the output
stage that lets only the JSON document through, as it is produced or held whole.

A request that forces one function tool (a named ``tool_choice``, as instructor's default
mode and LangChain's ``function_calling`` send) is structured output too
(:func:`forced_tool_format`): a bot that answers with the arguments in text instead of
calling the tool still gives the client its call (:func:`final_items`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..errors import InvalidRequest
from ..jsonlib import JSONDecodeError, dumps_str
from .items import CONTENT, TOOL_ARGS, TOOL_CALL, Out
from .tooloptions import ToolOptions, new_call_id

__all__ = ["JsonStage", "OutputFormat", "describe", "extract", "final_items",
           "forced_tool_format", "instruction", "parse_chat_format", "parse_text_format",
           "problem", "repair_query"]

Kind = Literal["json_object", "json_schema"]


@dataclass(frozen=True, slots=True)
class OutputFormat:
    kind: Kind
    name: str = "response"
    schema: dict[str, Any] | None = None
    strict: bool = False
    description: str = ""
    #: The answer is a call of this tool (a forced ``tool_choice``); the JSON is its arguments.
    tool: str | None = None


def _jsonschema() -> tuple[Any, Any]:
    """``jsonschema``, imported when a request first needs it: a server that never sees
    structured output does not hold its 3 MB."""
    from jsonschema import exceptions, validators

    return exceptions, validators


def parse_chat_format(value: Any, path: str = "response_format") -> OutputFormat | None:
    """Chat's ``response_format``: ``text``, ``json_object`` or ``json_schema``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{path}' must be an object.", param=path)
    kind = value.get("type")
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict):
            raise InvalidRequest(f"'{path}.json_schema' must be an object with 'name' and "
                                 "'schema'.", param=f"{path}.json_schema")
        return _schema_format(spec, f"{path}.json_schema")
    return _simple(kind, path)


def parse_text_format(value: Any, path: str = "text.format") -> OutputFormat | None:
    """Responses' ``text.format``: ``text``, ``json_object`` or a flat ``json_schema``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{path}' must be an object.", param=path)
    if value.get("type") == "json_schema":
        return _schema_format(value, path)
    return _simple(value.get("type"), path)


def _simple(kind: Any, path: str) -> OutputFormat | None:
    if kind == "text":
        return None
    if kind == "json_object":
        return OutputFormat("json_object")
    raise InvalidRequest(f"'{path}.type' must be 'text', 'json_object' or 'json_schema'.",
                         param=f"{path}.type")


def _schema_format(spec: dict[str, Any], path: str) -> OutputFormat:
    name = spec.get("name", "response")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise InvalidRequest(f"'{path}.name' must be 1-64 letters, digits, '_' or '-'.",
                             param=f"{path}.name")
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequest(f"'{path}.schema' must be a JSON Schema object.",
                             param=f"{path}.schema")
    schema_errors, validators = _jsonschema()
    try:
        validators.validator_for(schema).check_schema(schema)
    except schema_errors.SchemaError as exc:
        where = "".join(f"[{p!r}]" for p in exc.path)
        raise InvalidRequest(f"'{path}.schema' is not a valid JSON Schema: {exc.message}"
                             + (f" (at {where})" if where else ""),
                             param=f"{path}.schema") from None
    description = spec.get("description")
    return OutputFormat("json_schema", name, schema, spec.get("strict") is True,
                        description if isinstance(description, str) else "")


def forced_tool_format(opts: ToolOptions,
                       free_form: frozenset[str] = frozenset()) -> OutputFormat | None:
    """The format of a forced tool call's arguments: when ``opts`` force exactly one
    function tool (a named ``tool_choice``, or ``required`` with one tool), its parameters;
    else ``None``. Free-form tools (``free_form``) and tools whose parameters are not a
    valid JSON Schema are left alone (the request goes on as plain tool calling)."""
    offered = opts.offered()
    if len(offered) != 1 or not (opts.named or opts.choice == "required"):
        return None
    tool = offered[0]
    if tool["name"] in free_form:
        return None
    schema = tool["parameters"]
    schema_errors, validators = _jsonschema()
    try:
        validators.validator_for(schema).check_schema(schema)
    except schema_errors.SchemaError:
        return None
    return OutputFormat("json_schema", tool["name"], schema, False, tool["description"],
                        tool=tool["name"])


def describe(fmt: OutputFormat) -> str:
    """The format in words, for an error message."""
    if fmt.tool is not None:
        return f"arguments of the forced call of tool {fmt.tool!r}"
    return f"{fmt.kind} format"


def final_items(fmt: OutputFormat, document: str) -> list[Out]:
    """The answer, once its JSON ``document`` validated: the document as content, or for a
    forced tool a call of that tool with the document as its arguments."""
    if fmt.tool is None:
        return [(CONTENT, document)]
    return [(TOOL_CALL, 0, new_call_id(), fmt.tool), (TOOL_ARGS, 0, document)]


def instruction(fmt: OutputFormat) -> str:
    """What the bot is told, after the user's last message."""
    if fmt.tool is not None:
        about = f" ({fmt.description})" if fmt.description else ""
        return ("# Response format\n\nAnswer with a call of the tool "
                f"\"{fmt.tool}\"{about}. If you do not call it, answer instead with its "
                "arguments as one JSON value and nothing else: no words before or after it, no "
                "Markdown code fence, no comments. The arguments must validate against this "
                f"JSON Schema:\n\n{dumps_str(fmt.schema)}")
    text = ("# Response format\n\nAnswer with one JSON value and nothing else: no words before "
            "or after it, no Markdown code fence, no comments.")
    if fmt.kind == "json_object" or fmt.schema is None:
        return text + " The value must be a JSON object."
    about = f" ({fmt.description})" if fmt.description else ""
    return (f"{text} The value must validate against this JSON Schema, named "
            f"\"{fmt.name}\"{about}:\n\n{dumps_str(fmt.schema)}")


def native_format(fmt: OutputFormat) -> dict[str, Any]:
    """OpenAI's ``response_format`` value, for a bot that takes it as a parameter."""
    if fmt.kind == "json_object" or fmt.schema is None:
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {
        "name": fmt.name, "schema": fmt.schema, "strict": fmt.strict}}


_FENCE: Final = re.compile(r"```[ \t]*(?:json|JSON|json5)?[ \t]*\r?\n(.*?)```", re.S)
_THINK: Final = re.compile(r"^\s*<think>.*?</think>", re.S)
#: Start positions tried when looking for JSON in prose (bounded work on long answers).
_MAX_STARTS: Final = 64

_DECODER: Final = __import__("json").JSONDecoder()


def extract(text: str) -> tuple[Any, str] | None:
    """The JSON value in a bot's answer and its exact text, or ``None``.

    Tried in order: the whole answer; each fenced block; the first ``{`` or ``[`` from which
    a JSON value parses (so prose before it and a remark after it are left out).
    """
    text = _THINK.sub("", text, count=1)
    whole = text.strip()
    if whole:
        try:
            return _DECODER.decode(whole), whole
        except (JSONDecodeError, ValueError, RecursionError):
            pass
    for match in _FENCE.finditer(text):
        body = match.group(1).strip()
        try:
            return _DECODER.decode(body), body
        except (JSONDecodeError, ValueError, RecursionError):
            continue
    starts = 0
    for match in re.finditer(r"[{\[]", text):
        starts += 1
        if starts > _MAX_STARTS:
            break
        try:
            value, end = _DECODER.raw_decode(text, match.start())
        except (JSONDecodeError, ValueError, RecursionError):
            continue
        if isinstance(value, dict | list):
            return value, text[match.start():end]
    return None


def problem(fmt: OutputFormat, found: tuple[Any, str] | None) -> str | None:
    """Why the answer does not do, in words for the bot; ``None`` when it is valid."""
    if found is None:
        return "the answer contains no JSON value"
    value = found[0]
    if fmt.kind == "json_object" or fmt.schema is None:
        return None if isinstance(value, dict) else "the JSON value is not an object"
    schema_errors, validators = _jsonschema()
    validator = validators.validator_for(fmt.schema)(fmt.schema)
    error = schema_errors.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{error.message} (at {'/' + where if where else 'the top level'})"


def repair_query(query: dict[str, Any], answer: str, why: str) -> dict[str, Any]:
    """The Poe query for a repair round: the same conversation, the bot's invalid answer,
    and the validator's error."""
    messages = list(query["query"])
    messages.append({"role": "bot", "content": answer, "content_type": "text/markdown"})
    messages.append({"role": "user", "content_type": "text/markdown", "content": (
        f"That answer cannot be used: {why}. Answer again with only the corrected JSON "
        "value, nothing before or after it.")})
    repaired = {k: v for k, v in query.items() if k not in ("tool_calls", "tool_results")}
    repaired["query"] = messages
    return repaired


_BEFORE, _IN, _AFTER = 0, 1, 2


class JsonStage:
    """Output stage: only the answer's JSON document gets through.

    ``stream=True``: the document is sent as it is produced, from the first ``{`` or ``[``
    that starts a line (a code fence's first line included) to the bracket that closes it;
    prose and fences around it are dropped. ``stream=False``: nothing is sent; the loop takes
    :attr:`text` when the answer is complete and sends the validated document whole.
    Reasoning, tool calls and files pass through untouched.
    """

    __slots__ = ("_depth", "_escape", "_in_string", "_line_start", "_state", "_stream",
                 "active", "emitted", "parts")

    def __init__(self, *, stream: bool) -> None:
        self.active = True
        self._stream = stream
        self.parts: list[str] = []  #: the whole answer text
        self.emitted: list[str] = []  #: what went to the client
        self._state = _BEFORE
        self._line_start = True
        self._depth = 0
        self._in_string = False
        self._escape = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def feed(self, items: list[Out]) -> list[Out]:
        out: list[Out] = []
        for item in items:
            if item[0] != CONTENT:
                out.append(item)
                continue
            self.parts.append(item[1])
            if self._stream and self._state != _AFTER:
                sent = self._scan(item[1])
                if sent:
                    self.emitted.append(sent)
                    out.append((CONTENT, sent))
        return out

    def flush(self) -> list[Out]:
        return []

    def _scan(self, text: str) -> str:
        start = 0
        if self._state == _BEFORE:
            start = -1
            for i, ch in enumerate(text):
                if ch in "{[" and self._line_start:
                    start = i
                    self._state = _IN
                    break
                if ch == "\n":
                    self._line_start = True
                elif not ch.isspace():
                    self._line_start = False
            if start < 0:
                return ""
        end = len(text)
        for i in range(start, len(text)):
            ch = text[i]
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif ch == "\\":
                    self._escape = True
                elif ch == '"':
                    self._in_string = False
            elif ch == '"':
                self._in_string = True
            elif ch in "{[":
                self._depth += 1
            elif ch in "}]":
                self._depth -= 1
                if self._depth == 0:
                    self._state = _AFTER
                    end = i + 1
                    break
        return text[start:end]
