"""How many workers a load needs, from rates and times (pure arithmetic, one question each).

The policy (``policy.decide``) asks three questions:

- ``workers_for_rate``: how many workers serve a steady arrival rate at a given utilisation;
- ``extra_for_backlog``: the fewest more workers that clear a backlog by a deadline, counting
  what the serving workers and the ones still booting will do before it;
- ``deadline_s``: that deadline, from the latency target and the boot time.

Example: 100 requests queued, nothing running, 0.5 images/s per worker, 40 s boot, deadline
60 s: each new worker serves for 20 s, 10 images, so ``extra_for_backlog(...) == 10``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

_EPS = 1e-9
DEFAULT_TARGET_BOOTS = 1.5  # without a target: clear a backlog within 1.5 boot times
# Not worth a boot: a need of less than this fraction of a worker beyond whole ones, or a
# backlog that the workers in hand clear within this fraction of the deadline past it.
SLACK = 0.05


def ceil_count(x: float) -> int:
    """``ceil`` that does not turn 2.0000000001 (float noise) into 3."""
    return max(0, math.ceil(x - 1e-6))


def deadline_s(target_latency_s: float | None, boot_s: float) -> float:
    """Seconds from now by which a backlog should be cleared.

    The target, by default 1.5 x the boot time. A target the boot time alone exceeds cannot be
    met by new workers; it is then counted from the moment they are ready (boot + target).
    """
    if target_latency_s is None:
        return max(DEFAULT_TARGET_BOOTS * boot_s, _EPS)
    return target_latency_s if target_latency_s > boot_s else boot_s + target_latency_s


def workers_for_rate(arrival_rate: float, rate_per_worker: float, utilisation: float) -> int:
    """Workers that serve ``arrival_rate`` requests/s with each busy ``utilisation`` of the time.

    A fraction of a worker within ``SLACK`` is left to the backlog rule: sized at full use, a
    rate just over whole workers would otherwise keep one more nearly idle all the time.
    """
    if arrival_rate <= 0:
        return 0
    return max(1, ceil_count(arrival_rate / (rate_per_worker * utilisation) - SLACK))


def work_before(
    deadline: float, rate_per_worker: float, serving: int, starting_left_s: Sequence[float]
) -> float:
    """Requests the current workers serve before ``deadline`` (a starting one once it is ready)."""
    seconds = serving * deadline + sum(max(0.0, deadline - left) for left in starting_left_s)
    return rate_per_worker * seconds


def extra_for_backlog(
    backlog: int, arrival_rate: float, rate_per_worker: float, boot_s: float, deadline: float,
    serving: int, starting_left_s: Sequence[float],
) -> int:
    """The fewest workers to launch so that the backlog, and what arrives meanwhile, is served
    by ``deadline``; 0 when the current workers manage (a launch would not help), or finish
    within ``SLACK`` of the deadline after it (a boot costs more than that lateness)."""
    demand = backlog + arrival_rate * deadline
    short = demand - work_before(deadline, rate_per_worker, serving, starting_left_s)
    in_hand = serving + len(starting_left_s)
    if short <= _EPS or short <= SLACK * deadline * rate_per_worker * in_hand:
        return 0
    per_new = rate_per_worker * max(deadline - boot_s, _EPS)
    return ceil_count(short / per_new)


def workers_to_keep_for_backlog(
    backlog: int, arrival_rate: float, rate_per_worker: float, deadline: float
) -> int:
    """Serving workers that clear the backlog and keep up with arrivals within ``deadline``."""
    if backlog <= 0 and arrival_rate <= 0:
        return 0
    return ceil_count((backlog + arrival_rate * deadline) / (rate_per_worker * deadline))


def starting_left_s(launched_at: Sequence[float], boot_s: float, now: float) -> list[float]:
    """Seconds each starting worker still needs before it is ready (by the measured boot time)."""
    return [max(0.0, t + boot_s - now) for t in launched_at]
