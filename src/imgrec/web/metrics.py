"""Prometheus metrics of the web tier (its own registry, so several apps can live in one test)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..autoscale.answers import RecentAnswers, service_seconds
from ..errors import ImgrecError
from ..messages import ClassifyResult
from ..ports import Backend, WorkerState

if TYPE_CHECKING:
    from ..autoscale.controller import Controller

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class WebMetrics:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.registry = CollectorRegistry()
        self.answered = Counter(
            "imgrec_requests_answered", "Requests answered (synchronous and jobs), by outcome.",
            ["outcome"], registry=self.registry,
        )
        self.latency = Histogram(
            "imgrec_request_latency_seconds", "Upload to answer, synchronous requests and jobs.",
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
        self.recent = RecentAnswers()

    def observe(self, result: ClassifyResult, latency_s: float) -> None:
        self.answered.labels(outcome="ok" if result.ok else (result.error_code or "error")).inc()
        self.latency.observe(latency_s)
        self.recent.add(latency_s, service_seconds(result.timings_ms))

    def refresh(self) -> None:
        try:
            depth = self.backend.requests.depth()
        except ImgrecError:
            return
        self.queue_visible.set(depth.visible)
        self.queue_in_flight.set(depth.in_flight)


class ControllerCollector(Collector):
    """Fleet and autoscaler metrics, read from the controller's last tick at scrape time."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        c = self.controller
        workers = GaugeMetricFamily("imgrec_workers", "Workers by state.", labels=["state"])
        counts = {s: 0 for s in WorkerState if s != WorkerState.STOPPED}
        for w in list(c.workers):
            if w.state in counts:
                counts[w.state] += 1
        for state, n in counts.items():
            workers.add_metric([state.value], n)
        yield workers
        yield GaugeMetricFamily("imgrec_autoscale_min_workers", "Fewest workers.",
                                value=c.settings.min_workers)
        yield GaugeMetricFamily("imgrec_autoscale_max_workers", "Most workers.",
                                value=c.settings.max_workers)
        yield CounterMetricFamily("imgrec_workers_launched", "Workers launched by the autoscaler.",
                                  value=c.launched)
        yield CounterMetricFamily("imgrec_workers_drained", "Workers drained by the autoscaler.",
                                  value=c.drained)
        yield CounterMetricFamily("imgrec_autoscale_ticks", "Autoscaler ticks.", value=c.ticks)
        boot = c.boot_s()
        if boot is not None:
            yield GaugeMetricFamily("imgrec_worker_launch_to_ready_seconds",
                                    "Median launch-to-ready time of recent workers.", value=boot)
