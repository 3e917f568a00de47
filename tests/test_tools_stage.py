"""Tool calls, pure: the XML stage at every split point, the native json mapper, the request side."""

from __future__ import annotations

import json
from typing import Any

import pytest

from poe2openai.errors import InvalidRequest
from poe2openai.registry import ModelOptions, ResolvedModel
from poe2openai.translate.chunks import ChunkEncoder
from poe2openai.translate.nativetools import FirstToolCallOnly, NativeToolCalls
from poe2openai.translate.request import build_poe_query, parse_chat_request
from poe2openai.translate.response import (
    CONTENT,
    TOOL_ARGS,
    TOOL_CALL,
    Accumulator,
    ResponseTranslator,
)
from poe2openai.translate.stages import make_stages
from poe2openai.translate.tooloptions import ToolOptions, parse_tool_options
from poe2openai.translate.xmlprompt import render_call
from poe2openai.translate.xmltools import XmlToolCalls, parse_block
from tests.stage_utils import check_all_splits, merge, run

C = CONTENT

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "metric": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "opts": {"type": "object"},
                "ratio": {"type": "number"},
                "note": {"type": ["string", "null"]},
            },
            "required": ["city"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time"}}  # no description, no parameters


def opts(*, parallel: bool = True) -> ToolOptions:
    return parse_tool_options({"tools": [WEATHER, TIME], "parallel_tool_calls": parallel})


def normalize(items: list[Any]) -> list[Any]:
    """Merged items with tool-call arguments decoded (ids are random)."""
    out = []
    for m in merge(items):
        if m[0] == TOOL_CALL:
            out.append((TOOL_CALL, m[1], m[2], json.loads(m[3])))
        else:
            out.append(m)
    return out


CALL = ('<tool_call>\n<invoke name="get_weather">\n'
        '<parameter name="city">Paris</parameter>\n'
        '<parameter name="days">3</parameter>\n'
        '<parameter name="metric">true</parameter>\n'
        '<parameter name="tags">["a", "b"]</parameter>\n'
        '<parameter name="opts">{"x": 1}</parameter>\n'
        '<parameter name="ratio">0.5</parameter>\n'
        '<parameter name="note">null</parameter>\n'
        '</invoke>\n</tool_call>')
CALL_ARGS = {"city": "Paris", "days": 3, "metric": True, "tags": ["a", "b"], "opts": {"x": 1},
             "ratio": 0.5, "note": None}


XML_CASES = [
    # Text, a typed call, then a made-up continuation that must be dropped (B5).
    ("Let me check.\n\n" + CALL + "\nThe weather in Paris is sunny.",
     [(C, "Let me check."), (TOOL_CALL, 0, "get_weather", CALL_ARGS)]),
    # Two calls in a row; the second has no parameters.
    (CALL + "\n\n<tool_call>\n<invoke name=\"get_time\">\n</invoke>\n</tool_call>\n",
     [(TOOL_CALL, 0, "get_weather", CALL_ARGS), (TOOL_CALL, 1, "get_time", {})]),
    # Wrapped in a code fence: the fences never show.
    ("Sure:\n```xml\n" + CALL + "\n```\n",
     [(C, "Sure:"), (TOOL_CALL, 0, "get_weather", CALL_ARGS)]),
    # No call: every character comes out unchanged, tags and fences included.
    ("Use <b>bold</b>, a <tool_callx> tag, `<tool` and\n```python\nprint('<tool_call')\n```\n",
     [(C, "Use <b>bold</b>, a <tool_callx> tag, `<tool` and\n```python\nprint('<tool_call')\n```\n")]),
    ("Trailing blanks and a partial tag <tool_ca", [(C, "Trailing blanks and a partial tag <tool_ca")]),
    # The stream ends inside a block that is still complete enough.
    ('<tool_call>\n<invoke name="get_weather">\n<parameter name="city">Rome</parameter>\n</invoke>',
     [(TOOL_CALL, 0, "get_weather", {"city": "Rome"})]),
    # A block that cannot be parsed is shown, not swallowed.
    ("<tool_call>nonsense</tool_call> ok", [(C, "<tool_call>nonsense</tool_call> ok")]),
    # JSON inside the block (Hermes/Qwen style) and Anthropic's wrapper.
    ('<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo", "days": 2}}</tool_call>',
     [(TOOL_CALL, 0, "get_weather", {"city": "Oslo", "days": 2})]),
    ('<function_calls><invoke name="GET_WEATHER"><parameter name="city">X</parameter>'
     '</invoke></function_calls>',
     [(TOOL_CALL, 0, "get_weather", {"city": "X"})]),
    # The tag mentioned in prose: every character stays, blanks before the tag included.
    ("Use the <tool_call> tag to call tools. Anything else?",
     [(C, "Use the <tool_call> tag to call tools. Anything else?")]),
    # Malformed: an unclosed parameter is not a call with empty arguments; it is shown.
    ('<tool_call><invoke name="get_weather"><parameter name="city">Paris\n</tool_call>\nAfter.',
     [(C, '<tool_call><invoke name="get_weather"><parameter name="city">Paris\n</tool_call>'
          '\nAfter.')]),
    # A value that quotes the closing tag does not end the block early.
    ('<tool_call><invoke name="get_weather"><parameter name="note">print(\'</tool_call>\')'
     '</parameter></invoke></tool_call>',
     [(TOOL_CALL, 0, "get_weather", {"note": "print('</tool_call>')"})]),
    # JSON-form arguments are typed by the schema like the <parameter> form.
    ('<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo", "days": "2"}}</tool_call>',
     [(TOOL_CALL, 0, "get_weather", {"city": "Oslo", "days": 2})]),
]


@pytest.mark.parametrize(("text", "expected"), XML_CASES)
def test_xml_every_split(text: str, expected: list[Any]) -> None:
    check_all_splits(lambda: XmlToolCalls(opts()), text, expected, normalize=normalize)


def test_xml_three_piece_splits() -> None:
    text = 'Hi\n```\n<tool_call><invoke name="get_time"></invoke></tool_call>\n```\nbye'
    expected = [(C, "Hi"), (TOOL_CALL, 0, "get_time", {})]
    check_all_splits(lambda: XmlToolCalls(opts()), text, expected, triples=True,
                     normalize=normalize)


def test_xml_finishes_after_the_calls() -> None:
    stage = XmlToolCalls(opts())
    stage.feed([(C, CALL)])
    assert not stage.finished
    stage.feed([(C, "\n\n")])
    assert not stage.finished
    assert stage.feed([(C, "Result: 20C")]) == []
    assert stage.finished


def test_xml_not_parallel_keeps_only_the_first_call() -> None:
    stage = XmlToolCalls(opts(parallel=False))
    out = run(stage, [CALL + CALL])
    assert [i[0] for i in out] == [TOOL_CALL, TOOL_ARGS]
    assert stage.finished


def test_translator_ends_the_answer_when_the_xml_stage_finishes() -> None:
    tr = ResponseTranslator(stages=[XmlToolCalls(opts())])
    out = tr.feed([("text", {"text": "<tool_call><invoke name=\"get_time\"></invoke>"})])
    assert out == []
    out = tr.feed([("text", {"text": "</tool_call>\nIt is noon."})])
    assert [i[0] for i in out] == [TOOL_CALL, TOOL_ARGS]
    assert tr.done and tr.finish_reason == "tool_calls"


@pytest.mark.parametrize(("raw", "schema", "value"), [
    ("42", {"type": "integer"}, 42),
    ("42.0", {"type": "integer"}, 42),
    ("4.5", {"type": "number"}, 4.5),
    ("True", {"type": "boolean"}, True),
    ("no", {"type": "boolean"}, False),
    ("[1, 2]", {"type": "array"}, [1, 2]),
    ('{"a": [1]}', {"type": "object"}, {"a": [1]}),
    (" 007 ", {"type": "string"}, " 007 "),
    ("\nline one\nline two\n", {"type": "string"}, "line one\nline two"),
    ("12", {"anyOf": [{"type": "integer"}, {"type": "null"}]}, 12),
    ("red", {"enum": ["red", "green"]}, "red"),
    ("12", None, 12),  # no schema: JSON when it is JSON
    ("hello world", None, "hello world"),
    ("not json", {"type": "array"}, "not json"),  # wrong: left for the client to reject
])
def test_typed_arguments(raw: str, schema: Any, value: Any) -> None:
    tools = ToolOptions(tools=[{"name": "t", "description": "", "parameters": {
        "type": "object", "properties": {"p": schema} if schema else {}}}])
    calls = parse_block(f'<invoke name="t"><parameter name="p">{raw}</parameter></invoke>', tools)
    assert calls == [("t", {"p": value})]


def test_render_call_round_trips_through_the_parser() -> None:
    args = {"city": "New <York> & co", "days": 3, "metric": False, "tags": ["x"],
            "opts": {"deep": {"k": None}}, "ratio": 1.25, "note": "multi\nline"}
    text = render_call("get_weather", json.dumps(args))
    assert text.startswith("<tool_call>\n<invoke name=\"get_weather\">")
    assert parse_block(text[len("<tool_call>"):-len("</tool_call>")], opts()) == \
        [("get_weather", args)]


# -- native json events ---------------------------------------------------------------------

def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[str, dict[str, Any]]:
    return ("json", {"id": "chatcmpl-x", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}]})


def test_native_tool_call_deltas() -> None:
    tr = ResponseTranslator()
    out = tr.feed([
        chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 3, "id": "call_123", "type": "function",
             "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 3, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 3, "function": {"arguments": '"Paris"}'}}]}),
        chunk({"tool_calls": [{"index": 7, "id": "call_456", "type": "function",
                               "function": {"name": "get_time", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
        ("json", {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 5,
                                           "total_tokens": 16}}),
        ("done", {}),
    ])
    assert out == [
        (TOOL_CALL, 0, "call_123", "get_weather"),
        (TOOL_ARGS, 0, '{"city":'),
        (TOOL_ARGS, 0, '"Paris"}'),
        (TOOL_CALL, 1, "call_456", "get_time"),
        (TOOL_ARGS, 1, "{}"),
    ]
    assert tr.finish_reason == "tool_calls"
    assert tr.upstream_usage == {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
    acc = Accumulator()
    acc.add(out)
    assert acc.tool_calls[0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    enc = ChunkEncoder("chatcmpl-1", 1, "m")
    frames = [json.loads(line[6:]) for line in enc.encode(out).decode().split("\n\n") if line]
    first = frames[0]["choices"][0]["delta"]["tool_calls"][0]
    assert first == {"index": 0, "id": "call_123", "type": "function",
                     "function": {"name": "get_weather", "arguments": ""}}


def test_native_missing_ids_reused_index_late_name_and_empty_args() -> None:
    mapper = NativeToolCalls()
    out = mapper.feed({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"name": "a"}},
        {"index": 1, "function": {"arguments": '{"x"'}},  # arguments before the name
    ]}}]})
    out += mapper.feed({"choices": [{"delta": {"tool_calls": [
        {"index": 1, "function": {"name": "b", "arguments": ":1}"}},
        {"index": 0, "id": "other", "function": {"name": "c", "arguments": "{}"}},  # new call
    ]}}]})
    out += mapper.finish()
    calls = [i for i in out if i[0] == TOOL_CALL]
    assert [(c[1], c[3]) for c in calls] == [(0, "a"), (1, "b"), (2, "c")]
    ids = [c[2] for c in calls]
    assert all(i.startswith("call_") and len(i) > 10 for i in ids[:2]) and ids[2] == "other"
    assert len(set(ids)) == 3
    args = {}
    for i in out:
        if i[0] == TOOL_ARGS:
            args[i[1]] = args.get(i[1], "") + i[2]
    assert args == {0: "{}", 1: '{"x":1}', 2: "{}"}


def test_native_content_deltas_are_content() -> None:
    tr = ResponseTranslator()
    out = tr.feed([chunk({"content": "Hel"}), chunk({"content": "lo"}), ("done", {})])
    assert out == [(CONTENT, "Hello")]  # one batch: adjacent text is one item
    assert tr.finish_reason == "stop"


def test_first_tool_call_only() -> None:
    stage = FirstToolCallOnly()
    items = [(TOOL_CALL, 0, "a", "f"), (TOOL_ARGS, 0, "{}"), (TOOL_CALL, 1, "b", "g"),
             (TOOL_ARGS, 1, "{}"), (CONTENT, "x")]
    assert stage.feed(items) == [*items[:2], (CONTENT, "x")]


# -- request side --------------------------------------------------------------------------

NATIVE = ResolvedModel("m", "Bot")
XML = ResolvedModel("m", "Bot", ModelOptions(tool_mode="xml"))


def build(body: dict[str, Any], model: ResolvedModel = NATIVE) -> dict[str, Any]:
    return build_poe_query(parse_chat_request({"model": "m", **body}), model)


USER = {"role": "user", "content": "Weather in Paris?"}


def test_native_tools_are_sent_tolerantly() -> None:
    q = build({"messages": [USER], "tools": [WEATHER, TIME, {"type": "custom", "custom": {}}]})
    assert q["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
                                          "parameters": WEATHER["function"]["parameters"]}},
        {"type": "function", "function": {"name": "get_time", "description": "",
                                          "parameters": {"type": "object", "properties": {}}}},
    ]
    assert "tools" not in build({"messages": [USER], "tools": [WEATHER], "tool_choice": "none"})
    named = build({"messages": [USER], "tools": [WEATHER, TIME],
                   "tool_choice": {"type": "function", "function": {"name": "get_time"}}})
    assert [t["function"]["name"] for t in named["tools"]] == ["get_time"]


@pytest.mark.parametrize(("body", "param"), [
    ({"tools": {"a": 1}}, "tools"),
    ({"tools": [{"type": "function", "function": {"description": "x"}}]}, "tools[0].function.name"),
    ({"tools": [WEATHER, WEATHER]}, "tools[1].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]},
     "tools[0].function.parameters"),
    ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "tool_choice"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
])
def test_bad_tool_requests(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_chat_request({"model": "m", "messages": [USER], **body})
    assert err.value.param == param


def history(tool_content: Any = "18C and sunny") -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "Be brief."},
        USER,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris", "days": 2}'}},
            {"id": "call_b", "function": {"name": "get_time", "arguments": ""}}]},  # no type
        {"role": "tool", "tool_call_id": "call_a", "content": tool_content},
        {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
    ]


def test_native_history_ending_with_a_tool_round_uses_the_top_level_fields() -> None:
    q = build({"messages": history([{"type": "text", "text": "18C\n\"sunny\""}]),
               "tools": [WEATHER, TIME]})
    assert [m["role"] for m in q["query"]] == ["system", "user"]
    assert q["tool_calls"] == [
        {"id": "call_a", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris", "days": 2}'}},
        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]
    assert q["tool_results"] == [
        # B7: array text parts are joined as text, never JSON-escaped
        {"role": "tool", "name": "get_weather", "tool_call_id": "call_a", "content": '18C\n"sunny"'},
        {"role": "tool", "name": "get_time", "tool_call_id": "call_b", "content": "12:00"},
    ]


def test_native_last_round_with_assistant_text_still_ends_with_the_user_turn() -> None:
    messages = history()
    messages[2] = {**messages[2], "content": "Let me check."}
    q = build({"messages": messages, "tools": [WEATHER, TIME]})
    assert [m["role"] for m in q["query"]] == ["system", "user"]
    assert [c["id"] for c in q["tool_calls"]] == ["call_a", "call_b"]


def test_native_history_in_the_middle_uses_poe_tool_messages() -> None:
    messages = [*history(), {"role": "assistant", "content": "It is 18C."},
                {"role": "user", "content": "And tomorrow?"}]
    q = build({"messages": messages, "tools": [WEATHER, TIME]})
    roles = [(m["role"], m.get("message_type")) for m in q["query"]]
    assert roles == [("system", None), ("user", None), ("bot", "function_call"), ("tool", None),
                     ("bot", None), ("user", None)]
    calls = json.loads(q["query"][2]["content"])
    assert [c["id"] for c in calls] == ["call_a", "call_b"]
    results = json.loads(q["query"][3]["content"])
    assert [(r["name"], r["tool_call_id"], r["content"]) for r in results] == [
        ("get_weather", "call_a", "18C and sunny"), ("get_time", "call_b", "12:00")]
    assert "tool_calls" not in q and "tool_results" not in q
    # Without tools offered, the last round also stays in the messages.
    q = build({"messages": history(), "tools": [WEATHER], "tool_choice": "none"})
    assert [m["role"] for m in q["query"]][-2:] == ["bot", "tool"] and "tool_results" not in q


def test_xml_history_and_prompt() -> None:
    q = build({"messages": history(), "tools": [WEATHER, TIME]}, XML)
    assert "tools" not in q and "tool_calls" not in q and "tool_results" not in q
    roles = [m["role"] for m in q["query"]]
    assert roles == ["system", "user", "bot", "user"]
    bot = q["query"][2]["content"]
    # B23: history in the same format the model is told to use
    assert parse_block(bot.split("<tool_call>")[1].split("</tool_call>")[0], opts()) == [
        ("get_weather", {"city": "Paris", "days": 2})]
    assert bot.count("<tool_call>") == 2
    results = q["query"][3]["content"]
    assert '<tool_result name="get_weather" tool_call_id="call_a">\n18C and sunny\n</tool_result>' \
        in results
    # The instructions and full schemas go on the last user message, once.
    assert results.count("# Tools") == 1 and q["query"][1]["content"] == USER["content"]
    assert json.dumps(WEATHER["function"]["parameters"], separators=(",", ":")) in results
    assert '<invoke name="TOOL_NAME">' in results


def test_xml_instruction_variants() -> None:
    q = build({"messages": [USER], "tools": [WEATHER], "tool_choice": "required",
               "parallel_tool_calls": False}, XML)
    text = q["query"][-1]["content"]
    assert text.startswith(USER["content"] + "\n\n# Tools")
    assert "MUST call at least one tool" in text and "at most one tool call" in text
    q = build({"messages": [USER], "tools": [WEATHER], "tool_choice": "none"}, XML)
    assert q["query"][-1]["content"] == USER["content"]


def test_make_stages() -> None:
    req = parse_chat_request({"model": "m", "messages": [USER], "tools": [WEATHER],
                              "parallel_tool_calls": False})
    kinds = [type(s).__name__ for s in make_stages(req, NATIVE)]
    assert kinds == ["ReasoningSplitter", "MediaStage", "FirstToolCallOnly"]
    kinds = [type(s).__name__ for s in make_stages(req, XML)]
    assert kinds == ["ReasoningSplitter", "MediaStage", "XmlToolCalls"]
    req = parse_chat_request({"model": "m", "messages": [USER]})
    assert [type(s).__name__ for s in make_stages(req, XML)] == ["ReasoningSplitter", "MediaStage"]


def test_native_two_rounds_at_the_end() -> None:
    """An agent's second round: round 1 as Poe tool messages, round 2 in the top-level fields."""
    messages = [*history(), {"role": "assistant", "content": "One more.", "tool_calls": [
        {"id": "call_c", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
        {"role": "tool", "tool_call_id": "call_c", "content": "25C"}]
    q = build({"messages": messages, "tools": [WEATHER, TIME]})
    roles = [(m["role"], m.get("message_type")) for m in q["query"]]
    # The query is as it was before round 2 (like fastapi_poe's phase-2 request): the text
    # the bot wrote with its round-2 call goes with that round, so no bot message ends it.
    assert roles == [("system", None), ("user", None), ("bot", "function_call"), ("tool", None)]
    assert [c["id"] for c in q["tool_calls"]] == ["call_c"]
    assert q["tool_results"] == [{"role": "tool", "name": "get_weather", "tool_call_id": "call_c",
                                  "content": "25C"}]


@pytest.mark.parametrize(("calls", "param"), [
    ("x", "messages[1].tool_calls"),
    (["x"], "messages[1].tool_calls[0]"),
    ([{"id": "c", "function": {"arguments": "{}"}}], "messages[1].tool_calls[0].function.name"),
])
def test_bad_history_tool_calls_are_400_at_parse_time(calls: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_chat_request({"model": "m", "messages": [
            USER, {"role": "assistant", "tool_calls": calls}]})
    assert err.value.param == param


def test_history_arguments_as_objects_are_serialised() -> None:
    q = build({"messages": [USER, {"role": "assistant", "tool_calls": [
        {"id": "c", "function": {"name": "get_time", "arguments": {"tz": "UTC"}}}]},
        {"role": "tool", "tool_call_id": "c", "content": "12:00"}], "tools": [TIME]})
    assert q["tool_calls"][0]["function"]["arguments"] == '{"tz":"UTC"}'


def test_xml_prose_mention_streams_on_at_once() -> None:
    """Text after a tag that turns out to be prose is not held back until the end."""
    stage = XmlToolCalls(opts())
    first = stage.feed([(C, "Use the <tool_call>")])
    second = stage.feed([(C, " tag to call tools.")])
    assert "".join(i[1] for i in first + second) == "Use the <tool_call> tag to call tools."


@pytest.mark.parametrize("reason", ["length", "content_filter"])
def test_native_finish_reason_is_kept(reason: str) -> None:
    t = ResponseTranslator()
    t.feed([("json", {"choices": [{"index": 0, "delta": {"content": "abc"}}]}),
            ("json", {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}),
            ("done", {})])
    assert t.finish_reason == reason


def test_allowed_tools_naming_no_offered_tool_is_400() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_tool_options({"tools": [WEATHER], "tool_choice": {
            "type": "allowed_tools",
            "allowed_tools": {"mode": "required", "tools": [{"type": "function",
                                                            "function": {"name": "nope"}}]}}})
    assert info.value.param == "tool_choice"


def test_native_id_before_the_name_is_kept() -> None:
    native = NativeToolCalls()
    out = native.feed({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_poe_1", "function": {"arguments": '{"ci'}}]}}]})
    out += native.feed({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"name": "get_weather", "arguments": 'ty": "X"}'}}]}}]})
    assert [tuple(m) for m in merge(out)] == [(TOOL_CALL, 0, "get_weather", '{"city": "X"}')]
    assert out[0][2] == "call_poe_1"
