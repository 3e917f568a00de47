"""Token counting, pure parts and the offline tokenizer loader."""

from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

from poe2openai.tokenizer import ENCODING_URL, Tokenizer, cache_file
from poe2openai.translate.chunks import ChunkEncoder
from poe2openai.translate.conversation import Usage
from poe2openai.translate.items import CONTENT, REASONING, TOOL_ARGS, TOOL_CALL, Accumulator
from poe2openai.translate.messages_encode import MessagesStream
from poe2openai.translate.usage import (
    TALLY_HOLD,
    ByteTally,
    Tally,
    chat_usage,
    count_tokens,
    count_usage,
    estimate_cut,
    o200k_cut,
    query_prompt_tokens,
    upstream_usage,
)


def tiny_encoding(path: Path) -> Path:
    """A toy .tiktoken file: every byte, plus merges that make "hello" one token."""
    ranks = [bytes([b]) for b in range(256)] + [b"he", b"ll", b"hell", b"hello"]
    path.write_bytes(b"".join(base64.b64encode(tok) + b" " + str(i).encode() + b"\n"
                              for i, tok in enumerate(ranks)))
    return path


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt by tiktoken to fetch a file fails the test."""
    import tiktoken.load

    def refuse(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("tiktoken tried to download")

    monkeypatch.setattr(tiktoken.load, "read_file", refuse)


def test_estimate() -> None:
    assert count_tokens("") == 0
    assert count_tokens("a") == 1
    assert count_tokens("abcdefgh") == 2
    assert count_tokens("é" * 4) == 2  # bytes, not characters


def test_explicit_encoding_file_gives_exact_counts(tmp_path: Path, no_download: None) -> None:
    tok = Tokenizer({"TIKTOKEN_ENCODING_PATH": str(tiny_encoding(tmp_path / "o200k.tiktoken"))})
    assert tok.count("hello" * 10) == count_tokens("hello" * 10)  # not loaded yet: estimate
    tok.load()
    assert tok.loaded and tok.exact
    assert tok.count("hello" * 10) == 10 != count_tokens("hello" * 10)
    assert tok.count("<|endoftext|>") > 1  # special tokens are plain text here


@pytest.mark.parametrize("env", [
    {"TIKTOKEN_ENCODING_PATH": ""},
    {"TIKTOKEN_CACHE_DIR": ""},
    {"TIKTOKEN_ENCODING_PATH": "/nonexistent/o200k_base.tiktoken"},
])
def test_no_local_encoding_falls_back_without_network(env: dict[str, str], no_download: None,
                                                      tmp_path: Path) -> None:
    tok = Tokenizer({"TIKTOKEN_CACHE_DIR": str(tmp_path), **env})
    tok.load()
    assert tok.loaded and not tok.exact and tok.source == "estimate"
    assert tok.count("hello" * 10) == count_tokens("hello" * 10)


def test_empty_cache_dir_is_never_downloaded_into(tmp_path: Path, no_download: None) -> None:
    tok = Tokenizer({"TIKTOKEN_CACHE_DIR": str(tmp_path)})
    tok.load()
    assert not tok.exact
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_cached_file_is_left_alone(tmp_path: Path, no_download: None) -> None:
    env = {"TIKTOKEN_CACHE_DIR": str(tmp_path)}
    cached = cache_file(env)
    assert cached == str(tmp_path / hashlib.sha1(ENCODING_URL.encode()).hexdigest())
    tiny_encoding(Path(cached))
    tok = Tokenizer(env)
    tok.load()
    assert not tok.exact
    assert Path(cached).exists()  # tiktoken itself would delete it and download again


def test_load_runs_once_across_threads(tmp_path: Path, no_download: None) -> None:
    tok = Tokenizer({"TIKTOKEN_ENCODING_PATH": str(tiny_encoding(tmp_path / "e.tiktoken"))})
    threads = [threading.Thread(target=tok.load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tok.exact and tok.count("hello") == 1


def test_prompt_counts_messages_and_tool_definitions() -> None:
    body: dict[str, Any] = {"query": [{"role": "user", "content": "abcd"},
                                      {"role": "bot", "content": ""}]}
    base = query_prompt_tokens(body)
    assert base == 2 + (4 + 1) + (4 + 0)
    body["tools"] = [{"type": "function", "function": {"name": "f" * 40}}]
    assert query_prompt_tokens(body) > base + 10
    assert query_prompt_tokens(body, lambda text: 1) == 2 + 4 + 1 + 4 + 1 + 1


def test_upstream_usage_normalised() -> None:
    assert upstream_usage({"prompt_tokens": 3, "completion_tokens": 4,
                           "completion_tokens_details": {"reasoning_tokens": 2},
                           "prompt_tokens_details": {"cached_tokens": 1}}) == Usage(3, 4, 2, 1)
    assert chat_usage(Usage(3, 4, 2, 1)) == {
        "prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 1, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0}}
    assert upstream_usage({"prompt_tokens": 3}) is None
    assert upstream_usage({"prompt_tokens": True, "completion_tokens": 1}) is None
    assert upstream_usage(None) is None


# Texts that stress the cuts: words, runs of spaces, punctuation, digits, newlines,
# contractions, and characters of two, three and four UTF-8 bytes.
_PIECES = ["hello", " world", "  ", "   x", ", ", "don't", " 123456", "\n\n", "é", " día",
           " 日本語", "😀", " hello", ".", " A", "\t", " \u0301", "ab", " ,x"]


def _texts(n: int) -> list[str]:
    import random

    rng = random.Random(7)
    return ["".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 400))) for _ in range(n)]


@pytest.mark.parametrize("which", ["estimate", "o200k"])
def test_cuts_never_change_the_count(which: str, tmp_path: Path, no_download: None) -> None:
    """Counting the two sides of a cut gives the count of the whole, for the estimate and
    for the o200k pre-tokenizer (here with a toy vocabulary: merges stay inside pieces)."""
    tok = Tokenizer({"TIKTOKEN_ENCODING_PATH": str(tiny_encoding(tmp_path / "t.tiktoken"))}
                    if which == "o200k" else {"TIKTOKEN_ENCODING_PATH": ""})
    tok.load()
    assert tok.exact == (which == "o200k")
    cut_at = o200k_cut if which == "o200k" else estimate_cut
    cuts = 0
    for text in _texts(300):
        cut = tok.cut(text)
        assert cut == cut_at(text)
        assert 0 <= cut <= len(text)
        if 0 < cut:
            cuts += 1
            assert tok.count(text[:cut]) + tok.count(text[cut:]) == tok.count(text), text
    assert cuts > 200  # the cuts are found, not always refused


def test_o200k_cut_is_before_a_spaced_word() -> None:
    assert o200k_cut("one two three") == 7
    assert o200k_cut("x  two") == 0  # a run of spaces is split by the tokenizer itself
    assert o200k_cut("word") == 0
    assert estimate_cut("abcdefghij") == 8
    assert estimate_cut("日本語日本語x") == 4  # 12 bytes: a character boundary at 4 × 3
    assert estimate_cut("abc") == 0


@pytest.mark.parametrize("exact", [False, True])
def test_tally_holds_little_and_counts_the_whole(exact: bool, tmp_path: Path,
                                                 no_download: None) -> None:
    tok = Tokenizer({"TIKTOKEN_ENCODING_PATH": str(tiny_encoding(tmp_path / "t.tiktoken"))}
                    if exact else {"TIKTOKEN_ENCODING_PATH": ""})
    tok.load()
    tally, whole = Tally(tok.count, tok.cut), Accumulator()
    held = 0
    for text in _texts(40):
        for i in range(0, len(text), 7):  # a stream: small pieces, text and reasoning
            items = [(CONTENT, text[i:i + 7]), (REASONING, text[i:i + 3])]
            tally.add(items)
            whole.add(items)
            held = max(held, sum(map(len, tally.content)), sum(map(len, tally.reasoning)))
    assert sum(map(len, whole.content)) > 40 * TALLY_HOLD
    assert held <= 4 * TALLY_HOLD
    tally.add([(TOOL_CALL, 0, "call_1", "lookup"), (TOOL_ARGS, 0, '{"q": "x"}')])
    whole.add([(TOOL_CALL, 0, "call_1", "lookup"), (TOOL_ARGS, 0, '{"q": "x"}')])
    assert tally.content_tokens > 0 and tally.reasoning_tokens > 0
    query = {"query": [{"role": "user", "content": "hi"}]}
    assert count_usage(query, tally, tok.count) == count_usage(query, whole, tok.count)


def test_byte_tally_holds_no_text_and_counts_the_whole() -> None:
    """With the estimate, a stream's answer is counted in bytes: none of it is held, and
    the usage is the whole answer's, multi-byte characters and tool calls included."""
    for text in _texts(60):
        tally, whole = ByteTally(), Accumulator()
        for i in range(0, len(text), 5):
            items = [(CONTENT, text[i:i + 5]), (REASONING, text[i:i + 2])]
            tally.add(items)
            whole.add(items)
        tally.add([(TOOL_CALL, 0, "call_1", "lookup"), (TOOL_ARGS, 0, '{"q": "日本"}')])
        whole.add([(TOOL_CALL, 0, "call_1", "lookup"), (TOOL_ARGS, 0, '{"q": "日本"}')])
        assert tally.content == [] and tally.reasoning == []
        query = {"query": [{"role": "user", "content": "hi"}]}
        assert count_usage(query, tally) == count_usage(query, whole)
    assert count_usage(query, ByteTally()) == count_usage(query, Accumulator())


@pytest.mark.parametrize("face", ["chat", "messages"])
def test_stream_encoders_count_what_they_encode(face: str) -> None:
    """Chat and Messages streams keep none of the answer and count it as they encode it:
    one piece of text per read (their inline path), mixed batches, multi-byte characters
    and tool calls all count as the whole answer would."""
    import random

    rng = random.Random(11)
    for text in _texts(40):
        enc = ChunkEncoder("chatcmpl-1", 1, "m") if face == "chat" else MessagesStream("m")
        whole = Accumulator()
        enc.start()
        i = 0
        while i < len(text):
            step = rng.randint(1, 9)
            piece = text[i:i + step]
            i += step
            batch: list[Any] = ([(CONTENT, piece)] if rng.random() < 0.7
                                else [(REASONING, piece), (CONTENT, piece[::-1])])
            enc.encode(batch)
            whole.add(batch)
        calls = [(TOOL_CALL, 0, "call_1", "lookup"), (TOOL_ARGS, 0, '{"q": "日本"}')]
        enc.encode(calls)
        whole.add(calls)
        query = {"query": [{"role": "user", "content": "hi"}]}
        assert not enc.keeps_output
        counted = enc.output()
        assert counted.content == [] or counted.content == ()
        assert count_usage(query, counted) == count_usage(query, whole)
        assert count_usage(query, counted).output_tokens > 0


def test_tally_work_stays_linear_without_cuts(tmp_path: Path, no_download: None) -> None:
    """An answer with no o200k cut (numbers, tables) is looked at again only every
    TALLY_HOLD characters, and only from where the last look ended: the characters the
    cutter scans add up to about the answer's length, not its square."""
    tok = Tokenizer({"TIKTOKEN_ENCODING_PATH": str(tiny_encoding(tmp_path / "t.tiktoken"))})
    tok.load()
    looks: list[tuple[int, int]] = []

    def cut(text: str, start: int = 1) -> int:
        looks.append((len(text), start))
        return tok.cut(text, start)

    tally, whole = Tally(tok.count, cut), Accumulator()
    answer = "".join(f"| {i} | {i * 7} |\n" for i in range(3000))  # no space before a letter
    for i in range(0, len(answer), 16):
        tally.add([(CONTENT, answer[i:i + 16])])
        whole.add([(CONTENT, answer[i:i + 16])])
    assert len(looks) <= len(answer) // TALLY_HOLD + 1
    assert sum(length - start for length, start in looks) <= 2 * len(answer)
    query = {"query": [{"role": "user", "content": "hi"}]}
    assert count_usage(query, tally, tok.count) == count_usage(query, whole, tok.count)
    tally.add([(CONTENT, " then words again " * 40)])  # a cut at last: the held text goes
    assert sum(map(len, tally.content)) < 2 * TALLY_HOLD
