"""The two ways the policy plans a fleet: from rates (warm) or from a backlog ratio (cold).

A plan says what capacity to reach now (``up``), what to keep (``keep``) and which idle workers
may go (``drain_rules``); ``policy.act`` turns it into a decision. See ``policy`` for the rules.
"""

from __future__ import annotations

import math

from ..ports import WorkerState
from . import sizing
from .policy_types import (
    DrainRule,
    Observation,
    Plan,
    PolicyInputs,
    PolicySettings,
    PolicyState,
    all_idle,
    capacity,
    serving,
)
from .rates import ArrivalEstimate, ArrivalHistory, arrival_estimate, sub_window_rates

RATE_WINDOW_BOOTS = 2.0
RATE_WINDOW_LIMITS_S = (10.0, 60.0)
ONGOING_PARTS = 2  # window parts with arrivals that show requests are still coming


def knows_rates(obs: Observation) -> bool:
    return bool(obs.rate_per_worker) and obs.boot_s is not None


def skip_launch_that_cannot_help(obs: Observation, previous_backlog: int | None) -> bool:
    """Whether the serving workers clear a backlog that is not growing before a new one is ready.

    Only a shrinking (or steady) backlog: while requests keep arriving faster than they are
    served, what is queued now says little about what will be queued after the boot time.
    """
    if obs.rate_per_worker is None or obs.boot_s is None or previous_backlog is None:
        return False
    n = serving(obs.workers)
    return (n > 0 and obs.backlog <= previous_backlog
            and obs.backlog <= n * obs.rate_per_worker * obs.boot_s)


def wanted_for_backlog(
    obs: Observation, settings: PolicySettings, previous_backlog: int | None = None
) -> int:
    """Cold: workers the backlog asks for at ``target_backlog_per_worker``, before the bounds."""
    wanted = math.ceil(obs.backlog / settings.target_backlog_per_worker)
    if skip_launch_that_cannot_help(obs, previous_backlog):
        wanted = min(wanted, capacity(obs.workers))
    return wanted


def rate_window_s(boot_s: float) -> float:
    """The arrival-rate window: about two boot times, within ``RATE_WINDOW_LIMITS_S``."""
    low, high = RATE_WINDOW_LIMITS_S
    return min(high, max(low, RATE_WINDOW_BOOTS * boot_s))


def requests_ongoing(history: ArrivalHistory, now: float, window_s: float) -> bool:
    """Whether arrivals showed up in at least two parts of the window (a stream, not a burst)."""
    parts = sub_window_rates(history.samples, now, window_s)
    return sum(1 for _, r in parts if r > 0) >= ONGOING_PARTS


def held_need(
    needs: tuple[tuple[float, int], ...], now: float, hold_s: float, need: int
) -> tuple[int, tuple[tuple[float, int], ...]]:
    """The largest rate need of the last ``hold_s`` (this one included), and the kept history."""
    kept = (*((t, n) for t, n in needs if now - t < hold_s), (now, need))
    return max(n for _, n in kept), kept


def cold_plan(obs: Observation, settings: PolicySettings, state: PolicyState) -> Plan:
    """Cold: one worker per ``target_backlog_per_worker`` messages, drained after idling."""
    wanted = wanted_for_backlog(obs, settings, state.backlog)
    inputs = PolicyInputs("cold", obs.backlog, capacity(obs.workers), target_workers=wanted,
                          rate_per_worker=obs.rate_per_worker, boot_s=obs.boot_s)
    why = (f"rate or boot time not measured yet: backlog {obs.backlog} at "
           f"{settings.target_backlog_per_worker:g} per worker wants {wanted} workers")
    return Plan(wanted, wanted, (DrainRule(wanted, settings.idle_before_drain_s),), why, inputs)


def scale_in_rules(
    obs: Observation, settings: PolicySettings, now: float, *, keep: int, held: int,
    arriving: bool,
) -> tuple[DrainRule, ...]:
    """Which idle workers may go (the ski-rental rule; see ``policy``)."""
    idle_window = max(float(obs.boot_s or 0.0), settings.idle_before_drain_s)
    return (
        # Beyond what the rate (held) and the backlog ask for: at once while a sustained rate
        # shows the surplus, after the usual idle time when nothing is arriving.
        DrainRule(keep, 0.0 if arriving else settings.idle_before_drain_s),
        # Idle for a whole idle window: let it go unless the rate (held) asks for it as
        # headroom of a fleet that is otherwise busy. When every worker has been idle that
        # long nothing arrived for a boot time: the next request is cheaper to boot for.
        DrainRule(0 if all_idle(obs.workers, now, idle_window) else held, idle_window),
    )


def rate_plan(
    obs: Observation, settings: PolicySettings, state: PolicyState, history: ArrivalHistory,
    now: float,
) -> Plan:
    """Warm: workers for the arrival rate (held one boot time) and for the backlog by the
    deadline."""
    rate, boot = float(obs.rate_per_worker or 0.0), float(obs.boot_s or 0.0)
    window = rate_window_s(boot)
    est = arrival_estimate(history, now, window) or ArrivalEstimate(0.0, 0.0)
    for_rate = sizing.workers_for_rate(est.ahead(boot), rate, settings.utilisation)
    held, needs = held_need(state.rate_needs, now, boot, for_rate)
    ongoing = int(requests_ongoing(history, now, window))
    deadline = sizing.deadline_s(settings.target_latency_s, boot)
    starting = [w.launched_at for w in obs.workers if w.state == WorkerState.STARTING]
    have = capacity(obs.workers)
    # From zero, the first request (backlog) starts the fleet again, not the rate: otherwise a
    # trickle would relaunch at once the worker the idle window has just drained.
    expected = est.rate if have or obs.backlog else 0.0
    extra = sizing.extra_for_backlog(
        obs.backlog, expected, rate, boot, deadline, serving(obs.workers),
        sizing.starting_left_s(starting, boot, now),
    )
    keep = max(held, ongoing,
               sizing.workers_to_keep_for_backlog(obs.backlog, est.rate, rate, deadline))
    up = max(for_rate if have else 0, have + extra)
    inputs = PolicyInputs(
        "rates", obs.backlog, have, arrival_rate=round(est.rate, 3),
        arrival_trend=round(est.trend, 5), rate_per_worker=rate, boot_s=boot,
        target_latency_s=settings.target_latency_s, deadline_s=round(deadline, 3),
        utilisation=settings.utilisation, for_rate=held, for_backlog=extra,
        target_workers=max(up, keep),
    )
    why = (f"{est.rate:.2f} requests/s arriving (trend {est.trend:+.3f}/s per s) need "
           f"{for_rate} workers at {rate:g}/s each ({held} kept for a {boot:.1f} s boot); "
           f"backlog {obs.backlog} by {deadline:.1f} s needs {extra} more")
    rules = scale_in_rules(obs, settings, now, keep=keep, held=held, arriving=est.rate > 0)
    return Plan(up, keep, rules, why, inputs, needs)
