"""A thread-safe window of recently answered requests: throughput, latency, per-worker rate.

The web tier adds one entry per answered synchronous request; the status page and the
controller read the last ``window_s`` seconds.

Example::

    answers = RecentAnswers()
    answers.add(latency_s=0.120, service_s=0.004)
    answers.stats().p50_ms  # 120.0
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..percentile import percentile


@dataclass(frozen=True)
class AnswerStats:
    """Over the window: answers per second, latency percentiles (ms), one worker's images/s."""

    answered_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    rate_per_worker: float | None


def service_seconds(timings_ms: Mapping[str, float]) -> float | None:
    """A worker's time for one image of a batch, from a result's timings; None if missing."""
    try:
        batch = max(1.0, float(timings_ms["batch_size"]))
        ms = float(timings_ms["decode_ms"]) + float(timings_ms["inference_ms"]) / batch
    except (KeyError, TypeError, ValueError):
        return None
    return ms / 1000 if ms > 0 else None


class RecentAnswers:
    """The answers of the last ``window_s`` seconds (at most ``max_items`` kept)."""

    def __init__(
        self, window_s: float = 10.0, *, max_items: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_s = window_s
        self._clock = clock
        self._items: deque[tuple[float, float, float | None]] = deque(maxlen=max_items)
        self._lock = threading.Lock()

    def add(self, latency_s: float, service_s: float | None = None) -> None:
        """Record one answer that took ``latency_s`` end to end (``service_s`` on the worker)."""
        with self._lock:
            self._items.append((self._clock(), latency_s, service_s))

    def stats(self) -> AnswerStats:
        now = self._clock()
        with self._lock:
            while self._items and now - self._items[0][0] > self.window_s:
                self._items.popleft()
            items = list(self._items)
        latencies = [lat * 1000 for _, lat, _ in items]
        services = [s for _, _, s in items if s]
        return AnswerStats(
            answered_per_s=round(len(items) / self.window_s, 3),
            p50_ms=_round(percentile(latencies, 50)),
            p95_ms=_round(percentile(latencies, 95)),
            rate_per_worker=1.0 / statistics.median(services) if services else None,
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
