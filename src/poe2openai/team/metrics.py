"""Prometheus metrics (``GET /metrics``), in a registry of the app's own.

Label values that come from clients (model names) are bounded: past
``MAX_LABEL_VALUES`` distinct values, new ones are counted as ``"other"``, so a client
cannot grow the metrics without limit. Key names are bounded by the keys file.

Metrics are per process. With an instance id (``INSTANCE_ID``, or by default with
``REDIS_URL``), every sample carries it as the ``instance_id`` label, so that Prometheus
can tell instances apart whatever address it scraped them at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

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


class Metrics:
    """Every metric family of one app."""

    def __init__(self, instance_id: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._exposed: Collector = (self.registry if instance_id is None
                                    else _WithInstance(self.registry, instance_id))
        r = self.registry
        self.model_label = _Bounded()
        #: Labelled children by (metric, label values): as many as the series themselves.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self.route_label = _Bounded(50)
        info = Gauge("poe2openai_info", "The running version", ["version"], registry=r)
        info.labels(__version__).set(1)
        self.requests = Counter(
            "poe2openai_requests", "Answered API requests",
            ["face", "route", "model", "key", "status"], registry=r)
        self.ttfb = Histogram(
            "poe2openai_time_to_first_byte_seconds",
            "From the request's arrival to the first byte of the answer",
            ["face", "model"], buckets=_BUCKETS, registry=r)
        self.upstream = Histogram(
            "poe2openai_upstream_latency_seconds", "Time spent waiting on Poe per request",
            ["face", "model"], buckets=_BUCKETS, registry=r)
        self.overhead = Histogram(
            "poe2openai_proxy_overhead_seconds",
            "The proxy's own time per request: total minus the time spent waiting on Poe",
            ["face"], buckets=_OVERHEAD_BUCKETS, registry=r)
        self.duration = Histogram(
            "poe2openai_request_duration_seconds", "Whole request, to its last byte",
            ["face", "model"], buckets=_BUCKETS, registry=r)
        self.tokens = Counter(
            "poe2openai_tokens", "Tokens in (prompt) and out (completion)",
            ["direction", "model", "key"], registry=r)
        self.cancellations = Counter(
            "poe2openai_client_cancellations", "Requests whose client left before the end",
            ["face", "model"], registry=r)
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
        child = self._child
        child(self.requests, face, self.route_label(route), model_l, key, str(status)).inc()
        if ttfb is not None:
            child(self.ttfb, face, model_l).observe(ttfb)
        child(self.duration, face, model_l).observe(duration)
        if upstream is not None:
            child(self.upstream, face, model_l).observe(upstream)
            child(self.overhead, face).observe(max(0.0, duration - upstream))
        if tokens_in:
            child(self.tokens, "in", model_l, key).inc(tokens_in)
        if tokens_out:
            child(self.tokens, "out", model_l, key).inc(tokens_out)
        if cancelled:
            child(self.cancellations, face, model_l).inc()

    def _child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, looked up once per series: ``labels()`` checks its
        arguments and takes a lock on every call (a third of a request's metrics time)."""
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def reload(self, file: str, ok: bool) -> None:
        self.reloads.labels(file, "ok" if ok else "failed").inc()

    def rejected(self, reason: str, key: str) -> None:
        self.rejections.labels(reason, key).inc()

    def render(self) -> bytes:
        return generate_latest(self._exposed)
