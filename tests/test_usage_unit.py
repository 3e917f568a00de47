"""Token counting, pure parts and the offline tokenizer loader."""

from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

from poe2openai.tokenizer import ENCODING_URL, Tokenizer, cache_file
from poe2openai.translate.conversation import Usage
from poe2openai.translate.usage import (
    chat_usage,
    count_tokens,
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
