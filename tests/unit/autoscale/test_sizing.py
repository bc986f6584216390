"""Fleet sizing arithmetic: workers for a rate, for a backlog by a deadline, the deadline."""

from __future__ import annotations

import pytest

from imgrec.autoscale.sizing import (
    ceil_count,
    deadline_s,
    extra_for_backlog,
    starting_left_s,
    work_before,
    workers_for_rate,
    workers_to_keep_for_backlog,
)


def test_ceil_count_ignores_float_noise() -> None:
    assert ceil_count(2.0000000001) == 2
    assert ceil_count(2.01) == 3
    assert ceil_count(-1.0) == 0


@pytest.mark.parametrize(("target", "boot", "deadline"), [
    (None, 40.0, 60.0),  # default: 1.5 boot times
    (None, 0.3, 0.45),
    (100.0, 40.0, 100.0),  # reachable: as given
    (10.0, 40.0, 50.0),  # below the boot time: counted from readiness
])
def test_deadline(target: float | None, boot: float, deadline: float) -> None:
    assert deadline_s(target, boot) == pytest.approx(deadline)


@pytest.mark.parametrize(("arrivals", "rate", "utilisation", "workers"), [
    (0.0, 5.0, 0.9, 0), (0.01, 5.0, 0.9, 1), (4.5, 5.0, 0.9, 1), (4.8, 5.0, 0.9, 2),
    (20.0, 5.0, 0.9, 5), (20.0, 5.0, 1.0, 4),
    # Less than SLACK of a worker more is not worth a boot: the backlog rule covers it.
    (20.2, 5.0, 1.0, 4), (20.3, 5.0, 1.0, 5),
])
def test_workers_for_rate(arrivals: float, rate: float, utilisation: float, workers: int) -> None:
    assert workers_for_rate(arrivals, rate, utilisation) == workers


@pytest.mark.parametrize(("rate", "extra"), [(0.5, 10), (50.0, 1), (5.0, 1), (1.0, 5)])
def test_fewest_workers_that_clear_a_burst_from_zero_by_the_deadline(rate: float,
                                                                      extra: int) -> None:
    # 100 queued, nothing running, 40 s boot, deadline 60 s: each new worker serves 20 s.
    assert extra_for_backlog(100, 0.0, rate, 40.0, 60.0, serving=0, starting_left_s=[]) == extra


def test_serving_and_starting_workers_count_before_the_deadline() -> None:
    assert work_before(60.0, 0.5, serving=2, starting_left_s=[39.0, 70.0]) == pytest.approx(70.5)
    # Two serving workers clear 50 within 60 s at 0.5/s: a launch would not help.
    assert extra_for_backlog(50, 0.0, 0.5, 40.0, 60.0, serving=2, starting_left_s=[]) == 0
    # Ten launched a tick ago are still counted: no second launch for the same burst.
    left = starting_left_s([0.0] * 10, 40.0, now=1.0)
    assert extra_for_backlog(100, 0.0, 0.5, 40.0, 60.0, 0, left) == 0


def test_a_shortfall_within_the_slack_launches_nothing() -> None:
    # 4 workers at 5/s serve 1200 in 60 s; 4 queued + 20/s arriving is 4 short: those 4 are
    # 0.2 s late, not worth a 40 s boot. 100 short (5 s late, past 5 % of 60 s) is.
    assert extra_for_backlog(4, 20.0, 5.0, 40.0, 60.0, serving=4, starting_left_s=[]) == 0
    assert extra_for_backlog(100, 20.0, 5.0, 40.0, 60.0, serving=4, starting_left_s=[]) == 1


def test_arrivals_during_the_deadline_count_as_work() -> None:
    # 2 workers at 5/s serve 600 in 60 s; 8/s arriving meanwhile is 480 more.
    assert extra_for_backlog(200, 8.0, 5.0, 40.0, 60.0, serving=2, starting_left_s=[]) == 1


def test_workers_to_keep_for_backlog() -> None:
    assert workers_to_keep_for_backlog(0, 0.0, 5.0, 60.0) == 0
    assert workers_to_keep_for_backlog(1, 0.0, 5.0, 60.0) == 1
    assert workers_to_keep_for_backlog(0, 12.0, 5.0, 60.0) == 3
