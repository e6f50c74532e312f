"""Prometheus metrics, in a registry of the app's own (two apps in one process never collide).

Labels stay bounded whatever clients send: `route` is the route's template (`/v1/models/{model_id}`)
or `unmatched`, `model` is a name from the models file (from the `X-Slipway-Model` response header,
set only for served models), `code` is one of the service's error codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class Queues(Protocol):
    """Where the queue gauges come from (the model registry): (model, waiting, active, depth) each."""

    def queues(self) -> Iterable[tuple[str, int, int, int]]: ...


#: Slipway's own time per request: tenths of a millisecond up to a second.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
#: Answer length in completion tokens: an answer cut at max_tokens piles up in one bucket.
ANSWER_TOKEN_BUCKETS = (1, 4, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


# `*_created` series double the scrape size and no dashboard here uses them.
disable_created_metrics()


class QueueCollector(Collector):
    """Queue depth read from the models' slots at scrape time: nothing is counted on the hot path."""

    def __init__(self, source: Queues) -> None:
        self.source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        waiting = GaugeMetricFamily("slipway_queue_waiting", "Requests waiting for a model slot.", labels=["model"])
        active = GaugeMetricFamily("slipway_queue_active", "Generations running on a model.", labels=["model"])
        limit = GaugeMetricFamily("slipway_queue_depth_limit", "Queue depth allowed per model.", labels=["model"])
        for name, waiting_now, active_now, depth in self.source.queues():
            waiting.add_metric([name], waiting_now)
            active.add_metric([name], active_now)
            limit.add_metric([name], depth)
        yield waiting
        yield active
        yield limit


class QueueGauges:
    """The queue gauges with several worker processes: a collector is not merged across processes, so
    each worker writes its queues into gauges whose files prometheus_client sums (`livesum`): refreshed
    every second and before each scrape this worker answers."""

    def __init__(self, source: Queues, registry: CollectorRegistry) -> None:
        self.source = source
        labels = ["model"]
        self.waiting = Gauge(
            "slipway_queue_waiting", "Requests waiting for a model slot.", labels,
            registry=registry, multiprocess_mode="livesum",
        )
        self.active = Gauge(
            "slipway_queue_active", "Generations running on a model.", labels,
            registry=registry, multiprocess_mode="livesum",
        )
        self.limit = Gauge(
            "slipway_queue_depth_limit", "Queue depth allowed per model.", labels,
            registry=registry, multiprocess_mode="livesum",
        )

    def refresh(self) -> None:
        for name, waiting, active, depth in self.source.queues():
            self.waiting.labels(name).set(waiting)
            self.active.labels(name).set(active)
            self.limit.labels(name).set(depth)


class Metrics:
    """`multiprocess`: several worker processes (app/cli/workers.py) write their series to files that
    every worker's /metrics reads back merged; otherwise the series live in this app's registry."""

    def __init__(self, models: Queues | None = None, *, multiprocess: bool = False) -> None:
        self.multiprocess = multiprocess
        self.queue_gauges: QueueGauges | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "slipway_requests_total", "HTTP requests by route, method, status and model.",
            ["route", "method", "status", "model"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "slipway_request_duration_seconds", "Time from request to the end of the response (streams included).",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.ttft = Histogram(
            "slipway_time_to_first_token_seconds", "Time from the start of a generation (queue wait included) "
            "to its first token.", ["model"], buckets=TTFT_BUCKETS, registry=r,
        )  # fmt: skip
        self.overhead = Histogram(
            "slipway_overhead_seconds", "Slipway's own time for a request that used a model: wall time minus "
            "the time waiting for the model (its queue slot and its stream).", ["route", "model"],
            buckets=OVERHEAD_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter("slipway_tokens_total", "Tokens by model and type.", ["model", "type"], registry=r)
        self.queue_wait = Histogram(
            "slipway_queue_wait_seconds", "Time a generation waited for its model's slot.",
            ["model"], buckets=WAIT_BUCKETS, registry=r,
        )  # fmt: skip
        self.queue_rejections = Counter(
            "slipway_queue_rejections_total", "Requests refused (429) because the model's queue was full.",
            ["model"], registry=r,
        )  # fmt: skip
        self.active_streams = Gauge(
            "slipway_active_streams", "Open SSE responses.", registry=r, multiprocess_mode="livesum"
        )
        self.active_websockets = Gauge(
            "slipway_active_websockets", "Open WebSocket connections.", registry=r, multiprocess_mode="livesum"
        )
        self.provider_errors = Counter(
            "slipway_provider_errors_total", "Failed generation attempts by model and error code.",
            ["model", "code"], registry=r,
        )  # fmt: skip
        self.retries = Counter("slipway_provider_retries_total", "Retries by model.", ["model"], registry=r)
        self.fallbacks = Counter(
            "slipway_provider_fallbacks_total", "Fallbacks from a model to another.", ["model", "fallback"],
            registry=r,
        )  # fmt: skip
        # Quality between evaluation runs: how answers end, empty ones, and their length, per model.
        self.answers = Counter(
            "slipway_answers_total",
            "Answers by model and how they ended (stop, length, tool_calls, content_filter, cancelled).",
            ["model", "finish_reason"], registry=r,
        )
        self.empty_answers = Counter(
            "slipway_empty_answers_total", "Answers that ended without any content.", ["model"], registry=r
        )
        self.answer_tokens = Histogram(
            "slipway_answer_tokens", "Completion tokens per answer.", ["model"],
            buckets=ANSWER_TOKEN_BUCKETS, registry=r,
        )
        self.rate_limited = Counter(
            "slipway_rate_limit_rejections_total", "Requests refused by per-key rate limits.", ["limit"], registry=r
        )
        if models is not None and multiprocess:
            self.queue_gauges = QueueGauges(models, r)
        elif models is not None:
            r.register(QueueCollector(models))

    def exposition(self) -> bytes:
        """The Prometheus text: this registry's, or every worker's merged."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        if self.queue_gauges is not None:
            self.queue_gauges.refresh()
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged)
