"""The per-request series are plain numbers behind a custom collector; their exposition must
be exactly what prometheus-client's own Counter and Histogram would print for the same
observations (bucket edges included), whatever the values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from poe2openai.team.metrics import _BUCKETS, _OVERHEAD_BUCKETS, Metrics

_EDGES = st.sampled_from([*_BUCKETS, *_OVERHEAD_BUCKETS, 0.0])
_SECONDS = st.one_of(_EDGES, st.floats(0, 1000, allow_nan=False))
_REQUEST = st.tuples(st.sampled_from(["chat", "responses"]), st.sampled_from(["a", "b"]),
                     st.sampled_from([200, 429, 499]), _SECONDS, _SECONDS,
                     st.one_of(st.none(), _SECONDS), st.integers(0, 50), st.booleans())


def _library(requests: list[tuple]) -> bytes:  # type: ignore[type-arg]
    r = CollectorRegistry()
    total = Counter("poe2openai_requests", "Answered API requests",
                    ["face", "route", "model", "key", "status"], registry=r)
    hist = {name: Histogram(name, doc, labels, buckets=b, registry=r) for name, doc, labels, b in (
        ("poe2openai_time_to_first_byte_seconds",
         "From the request's arrival to the first byte of the answer", ["face", "model"],
         _BUCKETS),
        ("poe2openai_upstream_latency_seconds", "Time spent waiting on Poe per request",
         ["face", "model"], _BUCKETS),
        ("poe2openai_proxy_overhead_seconds",
         "The proxy's own time per request: total minus the time spent waiting on Poe",
         ["face"], _OVERHEAD_BUCKETS),
        ("poe2openai_request_duration_seconds", "Whole request, to its last byte",
         ["face", "model"], _BUCKETS))}
    tokens = Counter("poe2openai_tokens", "Tokens in (prompt) and out (completion)",
                     ["direction", "model", "key"], registry=r)
    gone = Counter("poe2openai_client_cancellations", "Requests whose client left before the end",
                   ["face", "model"], registry=r)
    for face, model, status, duration, upstream, ttfb, n, cancelled in requests:
        total.labels(face, "/v1/x", model, "-", str(status)).inc()
        if ttfb is not None:
            hist["poe2openai_time_to_first_byte_seconds"].labels(face, model).observe(ttfb)
        hist["poe2openai_request_duration_seconds"].labels(face, model).observe(duration)
        hist["poe2openai_upstream_latency_seconds"].labels(face, model).observe(upstream)
        hist["poe2openai_proxy_overhead_seconds"].labels(face).observe(
            max(0.0, duration - upstream))
        if n:
            tokens.labels("in", model, "-").inc(n)
            tokens.labels("out", model, "-").inc(n + 1)
        if cancelled:
            gone.labels(face, model).inc()
    return generate_latest(r)


def _ours(requests: list[tuple]) -> bytes:  # type: ignore[type-arg]
    m = Metrics()
    for face, model, status, duration, upstream, ttfb, n, cancelled in requests:
        m.request(face=face, route="/v1/x", model=model, key="-", status=status, ttfb=ttfb,
                  duration=duration, upstream=upstream, tokens_in=n, tokens_out=n + 1 if n else 0,
                  cancelled=cancelled)
    return m.render()


def _series(text: bytes) -> set[str]:
    """The sample lines and their HELP/TYPE headers, in any order."""
    return {line for line in text.decode().splitlines()
            if "poe2openai_info" not in line and "config_reloads" not in line
            and "limit_rejections" not in line}


@settings(max_examples=150, deadline=None)
@given(st.lists(_REQUEST, max_size=12))
def test_exposition_matches_prometheus_client(requests: list[tuple]) -> None:  # type: ignore[type-arg]
    assert _series(_ours(requests)) == _series(_library(requests))


def test_a_value_on_a_bucket_edge_counts_in_that_bucket() -> None:
    text = _ours([("chat", "a", 200, 0.25, 0.0, None, 0, False)]).decode()
    assert 'poe2openai_request_duration_seconds_bucket{face="chat",le="0.1",model="a"} 0.0' in text
    assert 'poe2openai_request_duration_seconds_bucket{face="chat",le="0.25",model="a"} 1.0' in text
