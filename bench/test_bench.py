"""Unit tests of the benchmark's own logic (not of the product): what it sends, how it
parses responses, and how it checks them. Run with ``python -m pytest bench -q``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
import load
import run
from benchlib import Spec, check_stream, percentile


def test_spec_round_trips_through_the_bot_name() -> None:
    spec = Spec(count=7, size=13, delay_ms=2.5, think=True)
    assert Spec.from_bot(spec.bot) == spec
    assert Spec.from_bot("GPT-4o") is None


@pytest.mark.parametrize("think", [False, True])
def test_events_concatenate_to_the_full_text(think: bool) -> None:
    spec = Spec(count=30, size=20, think=think)
    assert "".join(spec.events) == spec.full_text
    assert all(len(e) <= 20 for e in spec.events)
    assert spec.n_events == len(spec.events) == 30 + (len(spec.thinking[0]) + 19) // 20 * think
    assert spec.full_text.endswith(spec.answer)
    assert ('"' in spec.answer) and ("\n" in spec.answer)  # JSON escaping is exercised


def test_check_stream_accepts_raw_and_parsed_answers() -> None:
    spec = Spec(count=12, size=20, think=True)
    _, body = spec.thinking
    assert check_stream(spec, spec.full_text, "") == "raw"
    assert check_stream(spec, spec.answer, body) == "parsed"  # reasoning_content
    assert check_stream(spec, "<think>" + body + "</think>" + spec.answer, "") == "parsed"
    assert check_stream(spec, spec.answer, "") == "parsed"  # hidden reasoning


def test_check_stream_reports_mismatches() -> None:
    spec = Spec(count=12, size=20)
    assert check_stream(spec, spec.full_text[:-1], "").startswith("error")
    assert check_stream(spec, "", "") == "error: no content"
    broken = spec.full_text[:5] + "X" + spec.full_text[6:]
    assert check_stream(spec, broken, "") == (
        f"error: content differs at char 5 (got {len(broken)} chars, want {len(broken)})")
    think = Spec(count=12, size=20, think=True)
    assert check_stream(think, think.answer, "wrong reasoning").startswith("error")
    assert check_stream(think, think.answer[:-3], think.thinking[1]).startswith("error")


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    assert percentile([5.0], 99) == 5.0


def test_proc_readers_see_this_process() -> None:
    import os

    assert benchlib.cpu_seconds(os.getpid()) > 0
    assert benchlib.status_kb(os.getpid(), "VmRSS") > 1000
    busy, steal = benchlib.machine_cpu_seconds()
    assert busy > 0 and steal >= 0


class FakeTransport:
    def __init__(self) -> None:
        self.sent = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent += data

    def close(self) -> None:
        self.closed = True


def _chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


async def _exchange(response: bytes, step: int) -> tuple[int, bytes, FakeTransport]:
    conn = load.Connection()
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    body: list[bytes] = []
    done = conn.send(b"GET / HTTP/1.1\r\n\r\n", body.append)
    for i in range(0, len(response), step):
        conn.data_received(response[i:i + step])
    return await asyncio.wait_for(done, 1), b"".join(body), transport


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
async def test_client_decodes_chunked_bodies_split_anywhere(step: int) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    status, body, transport = await _exchange(head + _chunked(b"hello ", b"", b"world"), step)
    assert (status, body, transport.closed) == (200, b"hello ", False)  # empty chunk = end


@pytest.mark.parametrize("step", [1, 5, 1000])
async def test_client_reads_content_length_and_connection_close(step: int) -> None:
    head = b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
    status, body, transport = await _exchange(head + b"nope!", step)
    assert (status, body, transport.closed) == (404, b"nope!", True)


async def test_client_keeps_the_connection_for_the_next_request() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    status, body, transport = await _exchange(head + _chunked(b"abc", b"def"), 4)
    assert (status, body, transport.closed) == (200, b"abcdef", False)


async def test_client_fails_when_the_connection_drops_mid_body() -> None:
    conn = load.Connection()
    conn.connection_made(FakeTransport())  # type: ignore[arg-type]
    done = conn.send(b"GET / HTTP/1.1\r\n\r\n", lambda data: None)
    conn.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
    conn.connection_lost(None)
    with pytest.raises(load.ClientError):
        await done


def _openai_frame(delta: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": delta}]}) + b"\n\n"


def test_openai_stream_parsing_counts_content_frames() -> None:
    res = load.Result()
    ex = load.Exchange("sse", res, 0.0, None)
    raw = (_openai_frame({"role": "assistant", "content": ""}) + b": keep-alive\n\n"
           + _openai_frame({"reasoning_content": "think"}) + _openai_frame({"content": "Hi"})
           + _openai_frame({}) + b"data: [DONE]\n\n")
    for i in range(0, len(raw), 9):
        ex.feed(raw[i:i + 9])
    ex.end()
    assert (ex.content, ex.reasoning, res.frames, res.error) == (["Hi"], ["think"], 2, None)
    assert res.ttfc is not None


def test_openai_stream_without_done_or_with_an_error_chunk_is_an_error() -> None:
    res = load.Result()
    ex = load.Exchange("sse", res, 0.0, None)
    ex.feed(_openai_frame({"content": "Hi"}))
    ex.end()
    assert res.error == "stream ended without [DONE]"
    res = load.Result()
    ex = load.Exchange("sse", res, 0.0, None)
    ex.feed(b'data: {"error": {"message": "boom"}}\n\ndata: [DONE]\n\n')
    ex.end()
    assert res.error == "error chunk: boom"


@pytest.mark.parametrize("nl", [b"\n", b"\r\n"])
def test_poe_stream_parsing(nl: bytes) -> None:
    res = load.Result()
    ex = load.Exchange("poe", res, 0.0, None)
    events = [(b"meta", {}), (b"text", {"text": "a"}), (b"text", {"text": "b\r\n"}),
              (b"done", {})]
    raw = b"".join(b"event: " + n + nl + b"data: " + orjson.dumps(d) + nl + nl
                   for n, d in events)
    for i in range(0, len(raw), 5):
        ex.feed(raw[i:i + 5])
    ex.end()
    assert (ex.content, res.frames, res.error) == (["a", "b\r\n"], 2, None)


def test_non_stream_body_is_parsed_at_the_end() -> None:
    res = load.Result()
    ex = load.Exchange("json", res, 0.0, None)
    body = orjson.dumps({"choices": [{"message": {"content": "full", "reasoning_content": "r"}}]})
    ex.feed(body[:10])
    ex.feed(body[10:])
    ex.end()
    assert (ex.content, ex.reasoning, res.frames) == (["full"], ["r"], 1)


def _face_stream(kind: str, fail: bool = False) -> bytes:
    """What the product's own encoder sends for the request load.py builds for ``kind``."""
    from poe2openai.errors import UpstreamError
    from poe2openai.translate.conversation import Usage
    from poe2openai.translate.items import CONTENT, REASONING
    from poe2openai.translate.messages_encode import MessagesExchange
    from poe2openai.translate.messages_request import parse_messages_request
    from poe2openai.translate.responses_encode import ResponsesExchange
    from poe2openai.translate.responses_request import parse_responses_request

    client = load.Client(load.main_parser().parse_args(["--url", "http://127.0.0.1:1",
                                                        "--kind", kind]))
    body = orjson.loads(client.request(client.spec, close=False).partition(b"\r\n\r\n")[2])
    if kind == "responses":
        parsed = parse_responses_request(body)
        enc: Any = ResponsesExchange(parsed.conv, parsed.settings).stream_encoder()
    else:
        enc = MessagesExchange(parse_messages_request(body)).stream_encoder()
    raw = (enc.start() + enc.encode([(REASONING, "think"), (CONTENT, "Hi")])
           + enc.encode([(CONTENT, " there")]))
    if fail:
        return raw + enc.fail(UpstreamError("boom"))
    return raw + enc.finish("stop", Usage(3, 2))


@pytest.mark.parametrize("kind", ["responses", "messages"])
def test_typed_event_streams_of_the_other_faces(kind: str) -> None:
    res = load.Result()
    ex = load.Exchange(kind, res, 0.0, None)
    raw = _face_stream(kind)
    for i in range(0, len(raw), 11):
        ex.feed(raw[i:i + 11])
    ex.end()
    assert (ex.content, ex.reasoning, res.frames, res.error) == (["Hi", " there"], ["think"],
                                                                  3, None)
    assert res.ttfc is not None


@pytest.mark.parametrize("kind", ["responses", "messages"])
def test_typed_event_stream_that_fails_or_is_cut_is_an_error(kind: str) -> None:
    res = load.Result()
    ex = load.Exchange(kind, res, 0.0, None)
    ex.feed(_face_stream(kind, fail=True))
    ex.end()
    assert res.error is not None and res.error.startswith("error event")
    res = load.Result()
    ex = load.Exchange(kind, res, 0.0, None)
    ex.feed(_face_stream(kind)[:-40])  # the closing event is cut off
    ex.end()
    assert res.error is not None and res.error.startswith("stream ended without")


def test_profile_summary_groups_samples(tmp_path: Path) -> None:
    stacks = tmp_path / "p.stacks.txt"
    stacks.write_text(
        "main (x/poe2openai/__main__.py:1);_stream (x/poe2openai/api/serving.py:9) 6\n"
        "main (x/poe2openai/__main__.py:1);write (x/aiohttp/http_writer.py:3) 3\n"
        "_bootstrap (threading.py:1);_worker (concurrent/futures/thread.py:81) 50\n"
        "_worker (concurrent/futures/thread.py:81);netrc_from_env (x/aiohttp/helpers.py:2) 1\n")
    text = run.profile_summary(stacks)
    assert text.startswith("10 samples")
    assert "50 more samples" in text
    assert " 60.0%  poe2openai's own code" in text
    assert " 30.0%  aiohttp" in text
    assert " 10.0%  proxy / netrc lookups" in text
    assert "_stream (poe2openai/api/serving.py)" in text


def _rec(target: str, cpu: float, fake: float, rss: float | None = None, **kw: Any
         ) -> dict[str, Any]:
    return {"scenario": "i", "target": target, "cpu_per_1k_chunks_s": cpu,
            "cpu_vs_fake": cpu / fake, "rss_per_stream_kb": rss, "errors": 0,
            "ttfc_p50_ms": kw.get("ttfc", 2.0), "startup_ms": 300, "idle_rss_kb": 40_000}


def test_repeats_report_the_median_attempt_in_fake_poe_units() -> None:
    attempts = [_rec("product", 0.060, 1.0), _rec("product", 0.050, 2.0),
                _rec("product", 0.070, 1.0)]
    # By CPU / fake CPU: 0.06, 0.025, 0.07 -> the median is the first attempt.
    assert run.pick(attempts)["cpu_per_1k_chunks_s"] == 0.060
    failed = [*attempts, {**_rec("product", 0.04, 1.0), "errors": 3}]
    assert run.pick(failed)["errors"] == 3  # a failed attempt is never hidden


def test_targets_compare_per_event_cpu_and_memory_with_the_reference() -> None:
    data = {"scenarios": {"i": {"delay_ms": 50, "hold": 500, "face": "responses"}},
            "results": [_rec("product", 0.066, 1.0, 33.0), _rec("reference", 0.060, 1.0, 30.0)]}
    by = {(r["scenario"], r["target"]): r for r in data["results"]}
    rows = "\n".join(run.targets(data, by))
    assert "| i (Responses): CPU per upstream event" in rows
    assert "| 1.10× | 1× | **no** |" in rows  # CPU and RSS are both 1.10x
    assert "| start-up to /healthz (s) | 0.30 s | 0.5 s | yes |" in rows
    assert run.added_ratio(1.5, 1.0) == "1.50×" and run.added_ratio(1.0, 0.0) == "ref +0"
