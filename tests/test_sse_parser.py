"""The Poe SSE parser against poe-protocol §6.3 items 18–24, with plain bytes."""

from __future__ import annotations

import json
import random

import pytest

from poe2openai.poe.sse import SSEError, SSEParser

EVENTS = [("meta", {"content_type": "text/markdown"}), ("text", {"text": "héllo 🌍 世界"}),
          ("text", {"text": "a\nb \"q\" \u2028"}), ("done", {})]


def encode(events: list[tuple[str, dict]], eol: str = "\n") -> bytes:
    return "".join(
        f"event: {name}{eol}data: {json.dumps(data, ensure_ascii=False)}{eol}{eol}"
        for name, data in events).encode()


def parse_all(chunks: list[bytes]) -> list[tuple[str, dict]]:
    p = SSEParser()
    out = []
    for c in chunks:
        out += p.feed(c)
    out += p.feed_eof()
    return [(name, json.loads(data)) for name, data in out]


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_line_endings(eol: str) -> None:
    assert parse_all([encode(EVENTS, eol)]) == EVENTS


def test_mixed_line_endings_in_one_stream() -> None:
    raw = b"event: text\r\ndata: {\"text\": \"a\"}\n\revent: text\rdata: {\"text\": \"b\"}\r\n\r\n"
    assert parse_all([raw]) == [("text", {"text": "a"}), ("text", {"text": "b"})]


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_every_split_point(eol: str) -> None:
    """Split anywhere: inside 'event:', inside a UTF-8 character, between CR and LF."""
    raw = encode(EVENTS, eol)
    for i in range(len(raw) + 1):
        assert parse_all([raw[:i], raw[i:]]) == EVENTS, i


def test_byte_by_byte_and_random_pieces() -> None:
    raw = encode(EVENTS, "\r\n")
    assert parse_all([raw[i:i + 1] for i in range(len(raw))]) == EVENTS
    rnd = random.Random(7)
    for _ in range(50):
        cuts = sorted(rnd.sample(range(1, len(raw)), 6))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        assert parse_all(pieces) == EVENTS


def test_several_events_in_one_read() -> None:
    p = SSEParser()
    got = p.feed(encode(EVENTS))
    assert [name for name, _ in got] == ["meta", "text", "text", "done"]


def test_comments_are_ignored_everywhere() -> None:
    raw = (b": ping\n\n:\n: ping - 2025-01-01 00:00:00.000000\nevent: text\n: inside\n"
           b"data: {\"text\": \"x\"}\n\n")
    assert parse_all([raw]) == [("text", {"text": "x"})]


def test_field_syntax_variants() -> None:
    raw = (b"event:text\ndata:{\"text\": \"no space\"}\nid: 5\nretry: 100\nbogus\n\n"
           b"data: {\"text\": \"unnamed\"}\n\n")
    assert parse_all([raw]) == [("text", {"text": "no space"}), ("message", {"text": "unnamed"})]


def test_multi_line_data_is_joined_with_newline() -> None:
    raw = b'event: text\ndata: {"text":\ndata:  "joined"}\n\n'
    p = SSEParser()
    [(name, data)] = p.feed(raw)
    assert name == "text"
    assert data == b'{"text":\n "joined"}'
    assert json.loads(data) == {"text": "joined"}


def test_line_over_64k_and_over_1mib() -> None:
    for size in (70_000, 1_100_000):
        big = "x" * size
        raw = encode([("text", {"text": big}), ("done", {})])
        pieces = [raw[i:i + 8192] for i in range(0, len(raw), 8192)]
        assert parse_all(pieces) == [("text", {"text": big}), ("done", {})]


def test_last_event_without_blank_line_is_not_lost() -> None:
    assert parse_all([b'event: text\ndata: {"text": "a"}\n\nevent: done\ndata: {}']) == [
        ("text", {"text": "a"}), ("done", {})]
    assert parse_all([b'event: done\ndata: {}\n']) == [("done", {})]


def test_close_without_done_and_empty_stream() -> None:
    assert parse_all([encode(EVENTS[:2])]) == EVENTS[:2]
    assert parse_all([b""]) == []
    assert parse_all([b": only a comment\n"]) == []


def test_event_name_does_not_leak_into_the_next_event() -> None:
    assert parse_all([b"event: text\n\ndata: {}\n\n"]) == [("message", {})]


def test_oversized_event_is_refused() -> None:
    p = SSEParser(max_event_size=1000)
    with pytest.raises(SSEError):
        p.feed(b"data: " + b"x" * 2000)
    p = SSEParser(max_event_size=1000)
    with pytest.raises(SSEError):
        p.feed(b"data: " + b"x" * 600 + b"\ndata: " + b"y" * 600 + b"\n")


def test_invalid_utf8_does_not_raise() -> None:
    p = SSEParser()
    [(name, data)] = p.feed(b"event: \xffx\ndata: \xff\xfe\n\n")
    assert name == "\ufffdx" and data == b"\xff\xfe"


def test_data_is_bytes_and_common_names_are_shared() -> None:
    [(name, data)] = SSEParser().feed(b"event: text\ndata: {}\n\n")
    assert name is "text" and data == b"{}"  # noqa: F632 - interned: no decode per event
