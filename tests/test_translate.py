"""The translation core with plain data: OpenAI request → Poe query, Poe events → chunks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from poe2openai.errors import InvalidRequest, RateLimited
from poe2openai.registry import ModelOptions, ResolvedModel
from poe2openai.translate.chunks import DONE, ChunkEncoder, make_completion
from poe2openai.translate.request import build_poe_query, parse_chat_request
from poe2openai.translate.response import (
    CONTENT,
    ERROR,
    Accumulator,
    ResponseTranslator,
)

BOT = ResolvedModel(requested="gpt", bot="GPT-4o")


def req(**kw: Any) -> dict[str, Any]:
    return {"model": "gpt", "messages": [{"role": "user", "content": "hi"}], **kw}


def test_roles_and_content_shapes() -> None:
    body = req(messages=[
        {"role": "system", "content": "sys"},
        {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
        {"role": "user", "content": [{"type": "text", "text": "a\nb\\c"}, {"type": "text", "text": "d"}]},
        {"role": "assistant", "content": None},
        {"role": "assistant", "content": "prev"},
        {"role": "user", "content": "now"},
    ])
    q = build_poe_query(parse_chat_request(body), BOT)
    # The empty assistant turn (content null, no tool calls) is left out.
    assert [m["role"] for m in q["query"]] == ["system", "system", "user", "bot", "user"]
    # Array text parts are joined verbatim: never JSON-escaped (the original's bug B7).
    assert [m["content"] for m in q["query"]] == ["sys", "dev", "a\nb\\c\nd", "prev", "now"]
    assert all(m["content_type"] == "text/markdown" for m in q["query"])
    assert q["version"] == "1.2" and q["type"] == "query"
    assert "temperature" not in q and "stop_sequences" not in q


def test_sampling_parameters() -> None:
    r = parse_chat_request(req(temperature=0.5, stop="END", logit_bias={"50256": -100}))
    q = build_poe_query(r, BOT)
    assert q["temperature"] == 0.5 and q["stop_sequences"] == ["END"]
    assert q["logit_bias"] == {"50256": -100.0}
    assert build_poe_query(parse_chat_request(req(stop=["a", "b"])), BOT)["stop_sequences"] == [
        "a", "b"]


def test_replace_response_models_get_system_as_user() -> None:
    media = ResolvedModel("flux", "flux-pro", ModelOptions(replace_response=True))
    r = parse_chat_request(req(messages=[{"role": "system", "content": "s"},
                                         {"role": "user", "content": "u"}]))
    assert [m["role"] for m in build_poe_query(r, media)["query"]] == ["user", "user"]


def test_ignored_parameters_are_reported() -> None:
    r = parse_chat_request(req(top_p=1, user="u", seed=None, stream_options={"include_usage": True},
                               stream=True))
    assert r.dropped == ["top_p", "user"]
    assert r.stream and r.stream_usage


@pytest.mark.parametrize(("body", "param"), [
    ([], None), ({"messages": []}, "model"), (req(model=""), "model"),
    (req(messages=[]), "messages"), (req(messages="hi"), "messages"),
    (req(messages=[{"role": "robot", "content": "x"}]), "messages[0].role"),
    (req(messages=["x"]), "messages[0]"),
    (req(n=2), "n"), (req(n="1"), "n"), (req(temperature=3), "temperature"),
    (req(temperature="hot"), "temperature"), (req(stop=[1]), "stop"), (req(stream="yes"), "stream"),
    (req(stream_options=[]), "stream_options"), (req(logit_bias={"1": "x"}), "logit_bias"),
])
def test_bad_requests_name_the_parameter(body: Any, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(body)
    assert info.value.param == param and info.value.status == 400


def test_bad_content_names_the_part() -> None:
    with pytest.raises(InvalidRequest) as info:  # found while parsing (before any upload)
        build_poe_query(parse_chat_request(req(messages=[{"role": "user", "content": [
            {"type": "text", "text": "x"}, {"type": "hologram"}]}])), BOT)
    assert info.value.param == "messages[0].content[1].type"
    assert "hologram" in info.value.message
    with pytest.raises(InvalidRequest, match="content"):  # also found while parsing
        parse_chat_request(req(messages=[{"role": "user", "content": 5}]))


def ev(name: str, **data: Any) -> tuple[str, dict[str, Any]]:
    return (name, data)


def run(events: list[tuple[str, dict[str, Any]]], streaming: bool) -> tuple[str, Accumulator]:
    t = ResponseTranslator(streaming=streaming)
    acc = Accumulator()
    for e in events:  # one event per batch
        acc.add(t.feed([e]))
    if not t.done:
        acc.add(t.finish())
    return "".join(acc.content), acc


@pytest.mark.parametrize(("events", "stream_text", "final_text"), [
    ([ev("meta"), ev("text", text="Hel"), ev("text", text="lo"), ev("done")], "Hello", "Hello"),
    # a replacement that extends what was streamed: only the tail is sent
    ([ev("text", text="Hel"), ev("replace_response", text="Hello"), ev("text", text="!"),
      ev("done")], "Hello!", "Hello!"),
    # placeholders replaced before any text: only the last replacement reaches the client
    ([ev("replace_response", text="Loading 10%"), ev("replace_response", text="Loading 90%"),
      ev("replace_response", text="![img](u)"), ev("done")], "![img](u)", "![img](u)"),
    # a true rewrite: the stream appends the replacement; non-stream is exactly the replacement
    ([ev("text", text="Generating..."), ev("replace_response", text="Done."), ev("text", text="!"),
      ev("done")], "Generating...\n\nDone.!", "Done.!"),
    # a trailing replacement with no text after it is not lost (the original's bug B25)
    ([ev("text", text="a"), ev("replace_response", text="b")], "a\n\nb", "b"),
    # suggested replies, data, ping, unknown and other indexes are not part of the answer
    ([ev("text", text="x"), ev("suggested_reply", text="More?"), ev("data", metadata="m"),
      ev("ping"), ev("foo"), ev("text", text="other", index=1), ev("text", text="y", index=0),
      ev("done"), ev("text", text="after done")], "xy", "xy"),
    ([ev("text", text=""), ev("text", text="a"), ev("text", text=""), ev("done")], "a", "a"),
    # non-ASCII text (the sent text is kept as UTF-8): an extension sends only its tail
    ([ev("text", text="Ça "), ev("text", text="va 😀"), ev("replace_response", text="Ça va 😀 ✓"),
      ev("done")], "Ça va 😀 ✓", "Ça va 😀 ✓"),
    ([ev("text", text="é"), ev("replace_response", text="e"), ev("done")], "é\n\ne", "e"),
    # a lone surrogate (possible with the standard library's JSON parser) is no error
    ([ev("text", text="a\ud83d"), ev("replace_response", text="a\ud83d!"), ev("done")],
     "a\ud83d!", "a\ud83d!"),
])
def test_event_sequences(events: list[Any], stream_text: str, final_text: str) -> None:
    assert run(events, streaming=True)[0] == stream_text
    assert run(events, streaming=False)[0] == final_text


def test_suggested_replies_are_not_part_of_the_answer() -> None:
    t = ResponseTranslator()
    out = t.feed([ev("text", text="x"), ev("suggested_reply", text="Tell me more")])
    assert out == [(CONTENT, "x")]


def test_error_event_ends_the_answer() -> None:
    t = ResponseTranslator()
    out = t.feed([ev("text", text="a"), ev("error", text="rate limit", allow_retry=True),
                  ev("text", text="never")])
    assert out[0] == (CONTENT, "a") and out[1][0] == ERROR and isinstance(out[1][1], RateLimited)
    assert t.done and len(out) == 2


def chunks(raw: bytes) -> list[Any]:
    frames = raw.decode().split("\n\n")
    assert frames[-1] == ""
    return [json.loads(f[6:]) if f != "data: [DONE]" else "[DONE]" for f in frames[:-1]]


def test_chunk_encoder_bytes() -> None:
    enc = ChunkEncoder("chatcmpl-1", 1700000000, "my-model")
    frames = chunks(enc.role() + enc.encode([(CONTENT, "ab\n\"")])
                    + enc.finish_chunk("stop") + enc.usage({"total_tokens": 3}) + DONE)
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "my-model", "system_fingerprint": None}
    choice = {"index": 0, "logprobs": None, "finish_reason": None}
    assert frames == [
        {**base, "choices": [{**choice, "delta": {"role": "assistant", "content": ""}}]},
        {**base, "choices": [{**choice, "delta": {"content": "ab\n\""}}]},
        {**base, "choices": [{**choice, "delta": {}, "finish_reason": "stop"}]},
        {**base, "choices": [], "usage": {"total_tokens": 3}},
        "[DONE]",
    ]


def test_completion_object() -> None:
    acc = Accumulator()
    acc.add([(CONTENT, "hi")])
    body = make_completion(id="chatcmpl-1", created=1, model="m", acc=acc, finish_reason="stop",
                           usage={"total_tokens": 1})
    assert body["object"] == "chat.completion"
    assert body["choices"] == [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                "message": {"role": "assistant", "content": "hi", "refusal": None}}]


def test_refusal_and_output_text_parts_are_text() -> None:
    """An assistant turn replayed from history may carry refusal parts (OpenAI's own shape)."""
    r = parse_chat_request(req(messages=[
        {"role": "user", "content": "do it"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."},
                                          {"type": "output_text", "text": "Sorry."}]},
        {"role": "user", "content": "ok"}]))
    assert build_poe_query(r, BOT)["query"][1] == {
        "role": "bot", "content": "I can't.\nSorry.", "content_type": "text/markdown"}
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(req(messages=[{"role": "assistant", "content": [
            {"type": "refusal", "text": "wrong field"}]}]))
    assert info.value.param == "messages[0].content[0].refusal"


def test_streamed_rewrite_of_a_reasoning_answer_keeps_thinking_out_of_content() -> None:
    from poe2openai.translate.reasoning import ReasoningSplitter

    events = [ev("text", text="*Thinking...*\n> a\n\nDraft"),
              ev("replace_response", text="*Thinking...*\n> a\n\nFinal answer"), ev("done")]
    for streaming in (True, False):
        t = ResponseTranslator(streaming=streaming,
                               stages=[ReasoningSplitter("reasoning_content", streaming=streaming)])
        acc = Accumulator()
        for e in events:
            acc.add(t.feed([e]))
        content = "".join(acc.content)
        assert "Thinking" not in content and "> a" not in content
        assert content.endswith("Final answer")
        assert "".join(acc.reasoning) == "a"


@pytest.mark.parametrize("marker", ["*Thinking...*", "_Thinking…_", "**Thinking…**", "Thinking..."])
def test_every_documented_marker_starts_a_thinking_block(marker: str) -> None:
    from poe2openai.translate.reasoning import strip_thinking

    assert strip_thinking(f"{marker}\n> step\n\nAnswer.") == "Answer."
    assert strip_thinking(f"Not at the start: {marker}\n> x") == f"Not at the start: {marker}\n> x"
