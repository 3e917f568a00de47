"""ReasoningSplitter as a pure stage: every split point of the input gives the same output."""

from __future__ import annotations

import pytest

from poe2openai.registry import ModelOptions
from poe2openai.translate.reasoning import MAX_HOLD, ReasoningSplitter
from poe2openai.translate.response import (
    CONTENT,
    REASONING,
    RESET,
    TOOL_CALL,
    Accumulator,
    ResponseTranslator,
)
from tests.stage_utils import check_all_splits, merge, run

C, R = CONTENT, REASONING

CASES = [
    # (answer text, expected merged items for reasoning_content)
    ("*Thinking...*\n\n> step one\n> step two\n\nThe answer.",
     [(R, "step one\nstep two"), (C, "The answer.")]),
    ("Thinking...\n> a\n>\n> b\nAnswer\n> quoted later stays content",
     [(R, "a\n\nb"), (C, "Answer\n> quoted later stays content")]),
    ("\n \n*Thinking...*  \n>no space\n\n\n>after blanks\n\n  Indented answer\n",
     [(R, "no space\n\n\nafter blanks"), (C, "  Indented answer\n")]),
    ("*Thinking...*\r\n> crlf line\r\n\r\nAnswer", [(R, "crlf line"), (C, "Answer")]),
    ("Hello! Thinking... is what I do.", [(C, "Hello! Thinking... is what I do.")]),
    ("Thinking... about your question\n> not reasoning",
     [(C, "Thinking... about your question\n> not reasoning")]),
    ("A normal answer\n*Thinking...*\n> still content", [(C, "A normal answer\n*Thinking...*\n> still content")]),
    ("*Thinking...*\n> only thinking, cut off", [(R, "only thinking, cut off")]),
    ("*Thinking...*", [(C, "*Thinking...*")]),
    ("*Think", [(C, "*Think")]),
    ("", []),
    ("Thinking…\n> unicode ellipsis\nok", [(R, "unicode ellipsis"), (C, "ok")]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_reasoning_content_every_split(text: str, expected: list[tuple[int, str]]) -> None:
    check_all_splits(lambda: ReasoningSplitter("reasoning_content"), text, expected)


def test_three_piece_splits_of_a_typical_answer() -> None:
    text, expected = CASES[0]
    check_all_splits(lambda: ReasoningSplitter("reasoning_content"), text, expected, triples=True)


@pytest.mark.parametrize(("text", "expected"), [
    ("*Thinking...*\n\n> step one\n> step two\n\nThe answer.",
     [(C, "<think>\nstep one\nstep two\n</think>\n\nThe answer.")]),
    ("*Thinking...*\n> cut off", [(C, "<think>\ncut off\n</think>")]),
    ("Plain answer", [(C, "Plain answer")]),
])
def test_think_format(text: str, expected: list[tuple[int, str]]) -> None:
    check_all_splits(lambda: ReasoningSplitter("think"), text, expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("*Thinking...*\n\n> step one\n> step two\n\nThe answer.", [(C, "The answer.")]),
    ("*Thinking...*\n> cut off", []),
    ("Plain answer", [(C, "Plain answer")]),
])
def test_hidden_format(text: str, expected: list[tuple[int, str]]) -> None:
    check_all_splits(lambda: ReasoningSplitter("hidden"), text, expected)


def test_end_of_thinking_and_answer_in_one_event_then_done() -> None:
    """B8: the answer prefix is neither duplicated nor lost."""
    for streaming in (True, False):
        tr = ResponseTranslator(streaming=streaming, stages=[ReasoningSplitter()])
        acc = Accumulator()
        acc.add(tr.feed([("text", {"text": "*Thinking...*\n> plan"})]))
        acc.add(tr.feed([("text", {"text": "\n\nThe answer"}), ("done", {})]))
        assert "".join(acc.reasoning) == "plan"
        assert "".join(acc.content) == "The answer"


def test_nothing_held_once_the_answer_is_known() -> None:
    stage = ReasoningSplitter()
    out = stage.feed([(CONTENT, "Hi")])
    assert out == [(CONTENT, "Hi")]
    assert stage.active is False  # dropped by the translator: no cost afterwards


def test_stays_active_in_non_stream_mode_for_rewrites() -> None:
    tr = ResponseTranslator(streaming=False, stages=[ReasoningSplitter(streaming=False)])
    acc = Accumulator()
    acc.add(tr.feed([("text", {"text": "Placeholder"})]))
    acc.add(tr.feed([("replace_response", {"text": "*Thinking...*\n> real plan\n\nReal answer"}),
                     ("done", {})]))
    assert "".join(acc.content) == "Real answer"
    assert "".join(acc.reasoning) == "real plan"


def test_reset_restarts_detection() -> None:
    stage = ReasoningSplitter(streaming=False)
    out = stage.feed([(CONTENT, "*Thinking...*\n> a\n"), (RESET,),
                      (CONTENT, "*Thinking...*\n> b\n\nB")])
    assert merge(out) == [(R, "a"), (RESET,), (R, "b"), (C, "B")]


def test_hold_is_bounded() -> None:
    stage = ReasoningSplitter()
    out = run(stage, [" " * (MAX_HOLD + 1)], flush=False)
    assert merge(out) == [(C, " " * (MAX_HOLD + 1))]
    stage = ReasoningSplitter()
    out = stage.feed([(CONTENT, "*Thinking...*\n")]) + stage.feed([(CONTENT, " " * (MAX_HOLD + 1))])
    assert merge(out) == [(C, " " * (MAX_HOLD + 1))]


def test_other_items_release_held_text_in_order() -> None:
    stage = ReasoningSplitter()
    call = (TOOL_CALL, 0, "call_x", "f")
    out = stage.feed([(CONTENT, "Thin"), call])
    assert out == [(CONTENT, "Thin"), call]


def test_translator_with_options_object() -> None:
    opts = ModelOptions(reasoning_format="think")
    tr = ResponseTranslator(stages=[ReasoningSplitter(opts.reasoning_format)])
    out = tr.feed([("text", {"text": "Thinking...\n> x\n"}), ("text", {"text": "y"}),
                   ("done", {})])
    assert "".join(i[1] for i in out if i[0] == CONTENT) == "<think>\nx\n</think>\n\ny"
