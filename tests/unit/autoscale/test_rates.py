"""The arrival rate from queue depth and heartbeats' processed counts (pure, clock passed in)."""

from __future__ import annotations

import pytest

from imgrec.autoscale.rates import (
    ArrivalEstimate,
    ArrivalHistory,
    arrival_estimate,
    cumulative_at,
    sub_window_rates,
    theil_sen_slope,
)
from imgrec.ports import WorkerInfo, WorkerState


def busy(worker_id: str, processed: int) -> WorkerInfo:
    return WorkerInfo(worker_id, WorkerState.BUSY, 0.0, 0.0, None, processed)


def stream(rate: float, seconds: int, served_by: int = 1) -> ArrivalHistory:
    """``rate`` requests/s arrive; ``served_by`` workers serve all but 3 queued ones."""
    history = ArrivalHistory()
    for t in range(seconds + 1):
        arrived = round(rate * t)
        done = max(0, arrived - 3)
        workers = tuple(busy(f"w{i}", done // served_by + (i < done % served_by))
                        for i in range(served_by))
        history = history.observe(float(t), backlog=arrived - done, workers=workers)
    return history


def test_cumulative_arrivals_are_backlog_plus_completions() -> None:
    history = ArrivalHistory().observe(0.0, 5, ())
    history = history.observe(1.0, 2, (busy("w0", 4),))  # 4 done, 2 left: 6 arrived so far
    history = history.observe(2.0, 0, (busy("w0", 7), busy("w1", 2)))  # a new worker counts
    assert [a for _, a in history.samples] == [5.0, 6.0, 9.0]


def test_a_dip_before_the_heartbeat_reports_a_completion_is_not_an_arrival() -> None:
    history = ArrivalHistory().observe(0.0, 10, (busy("w0", 0),))
    history = history.observe(1.0, 6, (busy("w0", 0),))  # 4 served, not yet in a heartbeat
    history = history.observe(2.0, 6, (busy("w0", 4),))  # now reported
    assert [a for _, a in history.samples] == [10.0, 10.0, 10.0]


def test_old_samples_are_dropped() -> None:
    history = ArrivalHistory()
    for t in range(0, 300, 10):
        history = history.observe(float(t), 0, ())
    assert history.samples[0][0] >= 290 - 120


def test_cumulative_at_interpolates_and_is_unknown_before_the_first_sample() -> None:
    samples = [(10.0, 0.0), (20.0, 100.0)]
    assert cumulative_at(samples, 5.0) is None
    assert cumulative_at(samples, 15.0) == 50.0
    assert cumulative_at(samples, 25.0) == 100.0


def test_steady_stream_rate_and_flat_trend() -> None:
    est = arrival_estimate(stream(10.0, 120, served_by=3), now=120.0, window_s=60.0)
    assert est is not None
    assert est.rate == pytest.approx(10.0, abs=0.1)
    assert abs(est.trend) < 0.01


def test_rising_stream_has_a_positive_trend_and_looks_ahead() -> None:
    history = ArrivalHistory()
    for t in range(121):  # rate 0.1 * t: cumulative 0.05 t^2
        history = history.observe(float(t), round(0.05 * t * t), ())
    est = arrival_estimate(history, 120.0, 60.0)
    assert est is not None
    assert est.trend == pytest.approx(0.1, rel=0.1)
    assert est.ahead(40.0) > est.rate + 2.0


def test_a_one_off_burst_is_not_a_rate() -> None:
    history = ArrivalHistory().observe(0.0, 0, ())
    history = history.observe(1.0, 100, ())  # 100 at once, then nothing
    for t in range(2, 46):
        history = history.observe(float(t), 100, ())
    est = arrival_estimate(history, 45.0, 44.5)  # the burst is in the window's first part
    assert est is not None and est.rate == 0.0
    assert sum(1 for _, r in sub_window_rates(history.samples, 45.0, 44.5) if r > 0) == 1


def test_no_estimate_until_most_of_the_window_is_observed() -> None:
    assert arrival_estimate(stream(10.0, 20), now=20.0, window_s=60.0) is None
    assert arrival_estimate(stream(10.0, 40), now=40.0, window_s=60.0) is not None


def test_theil_sen_ignores_one_outlier() -> None:
    points = [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (3.0, 50.0), (4.0, 4.0)]
    assert theil_sen_slope(points) == 1.0
    assert theil_sen_slope([(0.0, 3.0)]) == 0.0


def test_a_trend_within_its_noise_is_not_scaled_ahead_of() -> None:
    assert ArrivalEstimate(10.0, 0.01, trend_noise=0.02).ahead(40.0) == 10.0
    assert ArrivalEstimate(10.0, 0.05, trend_noise=0.02).ahead(40.0) == pytest.approx(10.4)
    assert ArrivalEstimate(10.0, 0.05, trend_noise=0.02, lag_s=30).ahead(40.0) == \
        pytest.approx(10.7)
    assert ArrivalEstimate(10.0, -1.0).ahead(40.0) == 10.0


def test_a_burst_does_not_pass_for_a_rising_trend() -> None:
    history = ArrivalHistory()
    total = 0
    for t in range(61):  # 2/s, and 200 more over the last 15 s
        total += 2 + (14 if t > 45 else 0)
        history = history.observe(float(t), total, ())
    est = arrival_estimate(history, 60.0, 60.0)
    assert est is not None and est.rate == pytest.approx(2.0, abs=0.3)
    assert est.ahead(40.0) < 10.0


def test_a_fleet_without_processed_counts_is_assumed_to_serve_at_the_rate() -> None:
    history = ArrivalHistory()
    for t in range(61):  # 10/s arriving, two busy workers at 5/s keep the backlog at 4
        history = history.observe(float(t), 4, (busy("w0", 0), busy("w1", 0)),
                                  rate_per_worker=5.0)
    est = arrival_estimate(history, 60.0, 60.0)
    assert est is not None and est.rate == pytest.approx(10.0)
    counted = ArrivalHistory().observe(0.0, 4, (busy("w0", 1),), rate_per_worker=5.0)
    counted = counted.observe(1.0, 4, (busy("w0", 1),), rate_per_worker=5.0)
    assert counted.counts_seen and counted.samples[-1][1] == 5.0  # counts win once seen


def test_counts_that_come_with_the_first_heartbeats_are_not_replaced() -> None:
    history = ArrivalHistory().observe(0.0, 100, (), rate_per_worker=5.0)
    for t in range(1, 3):  # busy, but the first count comes with a heartbeat 2 s later
        history = history.observe(float(t), 100 - 5 * t, (busy("w0", 0),), rate_per_worker=5.0)
    history = history.observe(3.0, 85, (busy("w0", 15),), rate_per_worker=5.0)
    assert not history.assuming and history.counts_seen
    assert [a for _, a in history.samples] == [100.0] * 4
