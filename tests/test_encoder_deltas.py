"""The per-chunk deltas of the Responses and Messages encoders are rendered from a prefix
built once; they must be byte for byte what the general event renderer writes, for any text.
Adjacent text of one batch is one item out of the translator, so one delta on every face."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from poe2openai.jsonlib import loads
from poe2openai.translate.chunks import ChunkEncoder
from poe2openai.translate.conversation import Conversation
from poe2openai.translate.items import CONTENT, REASONING, TOOL_CALL, merge_text
from poe2openai.translate.messages_encode import MessagesStream, _event
from poe2openai.translate.response import ResponseTranslator
from poe2openai.translate.responses_encode import ResponseSettings, ResponsesStream

_TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)


def _responses() -> ResponsesStream:
    conv = Conversation.__new__(Conversation)
    conv.model = "m"
    return ResponsesStream(conv, ResponseSettings({}, frozenset(), False))


def _frames(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in data.decode().split("\n\n"):
        if frame:
            head, _, body = frame.partition("\n")
            out.append((head.removeprefix("event: "), loads(body.removeprefix("data: "))))
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(_TEXT, min_size=1, max_size=4))
def test_responses_text_delta_is_the_general_rendering(texts: list[str]) -> None:
    stream = _responses()
    stream.start()
    stream.encode([(CONTENT, "x")])  # opens the item
    for text in texts:
        cur = stream._current
        assert cur is not None
        seq = stream._seq
        fast = stream._text_delta(cur, text)
        stream._seq = seq
        general = stream._event("response.output_text.delta", item_id=cur.id,
                                output_index=cur.pos, content_index=0, delta=text, logprobs=[])
        assert fast == general


@settings(max_examples=200, deadline=None)
@given(_TEXT, st.integers(0, 50))
def test_messages_text_delta_is_the_general_rendering(text: str, index: int) -> None:
    stream = MessagesStream("m")
    stream.start()
    stream._index, stream._open = index, CONTENT
    assert stream.encode([(CONTENT, text)]) == _event(
        "content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": text}})


def test_adjacent_text_of_a_batch_is_one_item_and_one_delta() -> None:
    assert merge_text([(CONTENT, "Hel"), (CONTENT, "lo"), (REASONING, "hm"), (REASONING, "m"),
                       (CONTENT, "!"), (TOOL_CALL, 0, "c", "f"), (CONTENT, "a")]) == [
        (CONTENT, "Hello"), (REASONING, "hmm"), (CONTENT, "!"), (TOOL_CALL, 0, "c", "f"),
        (CONTENT, "a")]
    # Poe's events of one network read are one item out of the translator...
    batch = [("text", {"text": "Hel"}), ("text", {"text": "lo"}), ("text", {"text": "!"})]
    items = ResponseTranslator(streaming=True).feed(batch)
    assert items == [(CONTENT, "Hello!")]
    # ... and so one delta on every face.
    stream = _responses()
    stream.start()
    events = _frames(stream.encode(items))
    assert [(n, e["delta"]) for n, e in events if n.endswith(".delta")] == [
        ("response.output_text.delta", "Hello!")]
    assert [e["sequence_number"] for _, e in events] == list(range(2, 2 + len(events)))
    messages = MessagesStream("m")
    messages.start()
    events = _frames(messages.encode(items))
    assert [e["delta"]["text"] for n, e in events if n == "content_block_delta"] == ["Hello!"]
    chat = ChunkEncoder("chatcmpl-1", 1, "m")
    assert chat.encode(items) == chat.text("Hello!")
