"""The recent-answers window behind the status page's throughput and latency."""

from __future__ import annotations

from imgrec.autoscale.answers import RecentAnswers, service_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_empty_window() -> None:
    stats = RecentAnswers().stats()
    assert (stats.answered_per_s, stats.p50_ms, stats.p95_ms, stats.rate_per_worker) == \
        (0.0, None, None, None)


def test_throughput_latency_and_rate_over_the_window() -> None:
    clock = Clock()
    answers = RecentAnswers(window_s=10, clock=clock)
    for i in range(20):
        answers.add(latency_s=(i + 1) / 100, service_s=0.005)
    stats = answers.stats()
    assert stats.answered_per_s == 2.0
    assert stats.p50_ms == 100.0 and stats.p95_ms == 190.0
    assert stats.rate_per_worker == 200.0
    clock.now += 10.5
    assert answers.stats().answered_per_s == 0.0


def test_service_seconds_from_result_timings() -> None:
    timings = {"decode_ms": 3.0, "inference_ms": 16.0, "batch_size": 8.0}
    assert service_seconds(timings) == 0.005
    assert service_seconds({}) is None
