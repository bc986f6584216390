"""Prometheus metrics of the web tier (its own registry, so several apps can live in one test)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..backend import Backend
from ..errors import ImgrecError
from ..messages import ClassifyResult

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class WebMetrics:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.registry = CollectorRegistry()
        self.answered = Counter(
            "imgrec_requests_answered", "Synchronous requests answered, by outcome.",
            ["outcome"], registry=self.registry,
        )
        self.latency = Histogram(
            "imgrec_request_latency_seconds", "Upload to answer, synchronous requests.",
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.queue_visible = Gauge(
            "imgrec_queue_visible_messages", "Requests waiting in the queue.",
            registry=self.registry,
        )
        self.queue_in_flight = Gauge(
            "imgrec_queue_in_flight_messages", "Requests received by a worker, not yet answered.",
            registry=self.registry,
        )

    def observe(self, result: ClassifyResult, latency_s: float) -> None:
        self.answered.labels(outcome="ok" if result.ok else (result.error_code or "error")).inc()
        self.latency.observe(latency_s)

    def refresh(self) -> None:
        try:
            depth = self.backend.requests.depth()
        except ImgrecError:
            return
        self.queue_visible.set(depth.visible)
        self.queue_in_flight.set(depth.in_flight)
