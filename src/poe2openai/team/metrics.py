"""Prometheus metrics (``GET /metrics``), in a registry of the app's own.

Label values that come from clients (model names) are bounded: past
``MAX_LABEL_VALUES`` distinct values, new ones are counted as ``"other"``, so a client
cannot grow the metrics without limit. Key names are bounded by the keys file.

Metrics are per process. With an instance id (``INSTANCE_ID``, or by default with
``REDIS_URL``), every sample carries it as the ``instance_id`` label, so that Prometheus
can tell instances apart whatever address it scraped them at.

The series every request updates (requests, latencies, tokens, cancellations) are plain
numbers in :class:`_Series`, exposed by prometheus-client as a custom collector: the
library's own metric objects take a lock per update and walk the buckets in Python, which
cost about 15 us per request in a busy server. Everything runs on the event loop, so no lock
is needed; the exposition (names, ``le`` labels, ``_total``, ``_sum``, ``_count``) is the
library's.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .. import __version__

__all__ = ["CONTENT_TYPE_LATEST", "MAX_LABEL_VALUES", "Metrics"]

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: they double the output for no use here

MAX_LABEL_VALUES = 200
_MAX_LABEL_LEN = 100
#: Seconds: from a few ms (a proxy hop) to minutes (long reasoning answers).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class _Bounded:
    """Admits at most ``limit`` distinct values; later ones become ``"other"``."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        if not value:
            return "-"
        value = value[:_MAX_LABEL_LEN]
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return "other"
        self.seen.add(value)
        return value


class _Live(Collector):
    """Values read at scrape time: open answers, upload cache counters, the balance."""

    def __init__(self) -> None:
        self.active_streams: Callable[[], int] | None = None
        self.upload_cache: Callable[[], tuple[int, int]] | None = None
        self.balance: Callable[[], int | None] | None = None
        #: With REDIS_URL: whether its last call succeeded, and failed calls by use.
        self.redis: Callable[[], tuple[bool, dict[str, int]]] | None = None

    def collect(self) -> Iterator[Metric]:
        if self.active_streams is not None:
            g = GaugeMetricFamily("poe2openai_active_streams",
                                  "Poe answers open right now (streamed or not)")
            g.add_metric([], self.active_streams())
            yield g
        if self.upload_cache is not None:
            hits, misses = self.upload_cache()
            c = CounterMetricFamily("poe2openai_upload_cache_lookups",
                                    "Upload cache lookups by result", labels=["result"])
            c.add_metric(["hit"], hits)
            c.add_metric(["miss"], misses)
            yield c
        if self.balance is not None:
            value = self.balance()
            if value is not None:
                g = GaugeMetricFamily("poe2openai_poe_point_balance",
                                      "Poe point balance of the server-held key (POE_API_KEY)")
                g.add_metric([], value)
                yield g
        if self.redis is not None:
            up, failures = self.redis()
            g = GaugeMetricFamily("poe2openai_redis_up",
                                  "1 when the last call to Redis (REDIS_URL) succeeded")
            g.add_metric([], 1 if up else 0)
            yield g
            c = CounterMetricFamily(
                "poe2openai_redis_failures", "Redis calls that failed or timed out, by use "
                "(limits and spacing then let requests through)", labels=["use"])
            for use in ("limits", "spacing", "responses", "uploads"):
                c.add_metric([use], failures.get(use, 0))
            yield c


class _WithInstance(Collector):
    """Every sample of ``registry`` with an ``instance_id`` label."""

    def __init__(self, registry: CollectorRegistry, instance: str) -> None:
        self.registry = registry
        self.instance = instance

    def collect(self) -> Iterator[Metric]:
        for metric in self.registry.collect():
            labelled = Metric(metric.name, metric.documentation, metric.type, metric.unit)
            labelled.samples = [s._replace(labels={**s.labels, "instance_id": self.instance})
                                for s in metric.samples]
            yield labelled


class _Histogram:
    """One histogram series: a count per bucket (the last is ``+Inf``) and the sum."""

    __slots__ = ("counts", "sum")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)
        self.sum = 0.0


class _Family:
    """A counter or histogram family whose series are updated without locks."""

    def __init__(self, name: str, doc: str, labels: list[str],
                 buckets: tuple[float, ...] | None = None) -> None:
        self.name, self.doc, self.labels, self.buckets = name, doc, labels, buckets
        self.series: dict[tuple[str, ...], Any] = {}  # label values -> float or _Histogram

    def inc(self, values: tuple[str, ...], amount: float = 1) -> None:
        self.series[values] = self.series.get(values, 0) + amount

    def observe(self, values: tuple[str, ...], value: float) -> None:
        hist = self.series.get(values)
        if hist is None:
            hist = self.series[values] = _Histogram(len(self.buckets or ()))
        # Bucket i counts values <= bound i (Prometheus' "le"), the last one the rest.
        hist.counts[bisect_left(self.buckets, value)] += 1  # type: ignore[arg-type]
        hist.sum += value

    def collect(self) -> Metric:
        if self.buckets is None:
            counter = CounterMetricFamily(self.name, self.doc, labels=self.labels)
            for values, total in self.series.items():
                counter.add_metric(list(values), total)
            return counter
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        les = [floatToGoString(b) for b in self.buckets]  # type: ignore[no-untyped-call]
        les.append("+Inf")
        for values, hist in self.series.items():
            cumulative, running = [], 0
            for le, n in zip(les, hist.counts, strict=True):
                running += n
                cumulative.append((le, running))
            family.add_metric(list(values), cumulative, hist.sum)
        return family


class _Series(Collector):
    """The families every request updates."""

    def __init__(self) -> None:
        self.requests = _Family("poe2openai_requests", "Answered API requests",
                                ["face", "route", "model", "key", "status"])
        self.ttfb = _Family(
            "poe2openai_time_to_first_byte_seconds",
            "From the request's arrival to the first byte of the answer", ["face", "model"],
            _BUCKETS)
        self.upstream = _Family("poe2openai_upstream_latency_seconds",
                                "Time spent waiting on Poe per request", ["face", "model"],
                                _BUCKETS)
        self.overhead = _Family(
            "poe2openai_proxy_overhead_seconds",
            "The proxy's own time per request: total minus the time spent waiting on Poe",
            ["face"], _OVERHEAD_BUCKETS)
        self.duration = _Family("poe2openai_request_duration_seconds",
                                "Whole request, to its last byte", ["face", "model"], _BUCKETS)
        self.tokens = _Family("poe2openai_tokens", "Tokens in (prompt) and out (completion)",
                              ["direction", "model", "key"])
        self.cancellations = _Family("poe2openai_client_cancellations",
                                     "Requests whose client left before the end",
                                     ["face", "model"])
        self.families = (self.requests, self.ttfb, self.upstream, self.overhead,
                         self.duration, self.tokens, self.cancellations)

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.collect()


class Metrics:
    """Every metric family of one app."""

    def __init__(self, instance_id: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._exposed: Collector = (self.registry if instance_id is None
                                    else _WithInstance(self.registry, instance_id))
        r = self.registry
        self.model_label = _Bounded()
        self.route_label = _Bounded(50)
        info = Gauge("poe2openai_info", "The running version", ["version"], registry=r)
        info.labels(__version__).set(1)
        self.series = _Series()
        r.register(self.series)
        self.reloads = Counter(
            "poe2openai_config_reloads", "Loads of a config file by result",
            ["file", "result"], registry=r)
        self.rejections = Counter(
            "poe2openai_limit_rejections", "Requests refused by a per-key limit or the "
            "low-balance guard", ["reason", "key"], registry=r)
        self.live = _Live()
        r.register(self.live)

    def request(self, *, face: str, route: str, model: str | None, key: str, status: int,
                ttfb: float | None, duration: float, upstream: float | None,
                tokens_in: int | None, tokens_out: int | None, cancelled: bool) -> None:
        """One finished API request."""
        model_l = self.model_label(model)
        s = self.series
        s.requests.inc((face, self.route_label(route), model_l, key, str(status)))
        by_model = (face, model_l)
        if ttfb is not None:
            s.ttfb.observe(by_model, ttfb)
        s.duration.observe(by_model, duration)
        if upstream is not None:
            s.upstream.observe(by_model, upstream)
            s.overhead.observe((face,), max(0.0, duration - upstream))
        if tokens_in:
            s.tokens.inc(("in", model_l, key), tokens_in)
        if tokens_out:
            s.tokens.inc(("out", model_l, key), tokens_out)
        if cancelled:
            s.cancellations.inc(by_model)

    def reload(self, file: str, ok: bool) -> None:
        self.reloads.labels(file, "ok" if ok else "failed").inc()

    def rejected(self, reason: str, key: str) -> None:
        self.rejections.labels(reason, key).inc()

    def render(self) -> bytes:
        return generate_latest(self._exposed)
