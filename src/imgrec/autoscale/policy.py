"""imgrec's scaling policy: a pure function from what the controller saw to what it should do.

``decide(observation, settings, state, now) -> (decision, state)`` does no I/O and reads no clock;
the controller (and the simulator) pass ``now`` in. Its inputs are what a real controller can
observe: the queue's depth (visible and in flight), the workers from their heartbeats (state,
idle since, ``processed`` count) and, once measured or remembered from a previous run (see
``estimates``), one worker's service rate and the launch-to-ready (boot) time.

**With the rate and the boot time known** it sizes the fleet from them:

1. *Arrival rate* (``rates``): cumulative arrivals are backlog + completions (the growth of the
   heartbeats' ``processed`` counts); the rate is the median over five parts of a window of
   about two boot times (1.5 s to 60 s), so a one-off burst counts as backlog, not as a rate.
2. *For the rate*: enough workers to serve the rate expected one boot time ahead (rising trend
   only) at ``utilisation`` busy; at least one while requests keep coming (arrivals in two
   parts of the window).
3. *For the backlog*: the fewest more workers that clear the backlog, plus what arrives
   meanwhile, by the deadline: ``target_latency_s`` (default 1.5 x boot; a target below the
   boot time counts from readiness), counting what serving workers and those still booting do
   before it. None when the current workers manage: a launch that cannot help is not made.
4. *Scale-in, the ski-rental rule*: capacity asked for by the rate is kept for one boot time
   after the rate fell (keeping an idle worker that long costs what a new boot would). Beyond
   that, idle (READY) workers are drained: at once when a sustained rate shows the surplus, after
   ``idle_before_drain_s`` when nothing arrives (a burst served, nothing more coming), and any
   worker idle for a whole idle window (boot time, at least ``idle_before_drain_s``) whatever
   the estimate. So a fleet whose workers boot in 0.3 s still drains within about a second, and
   one whose workers boot in 40 s does not flap.

**Cold** (rate or boot time not known yet) it falls back to a ratio: one worker per
``target_backlog_per_worker`` messages, no launch when serving workers clear a shrinking
backlog before a new one could be ready, drain workers idle for ``idle_before_drain_s``.

Both then go through the same steps: ``clamp`` to ``[min_workers, max_workers]``,
``after_delay`` (a shortage or surplus must last ``scale_out_delay_s`` / ``scale_in_delay_s``),
``launch_count`` (starting workers count, so a burst never launches the cap twice) and
``drain_choice`` (only READY workers, longest idle first, never below ``min_workers``). A
decision never launches and drains at once. Each carries its reason in words and the inputs it
used (``PolicyInputs``).

Tuning: ``target_latency_s`` trades cost for latency. Lower it and bursts get more workers
sooner (each extra one costs at least a boot time); raise it and fewer workers serve longer.

Example::

    decision, state = decide(Observation(visible=40, in_flight=0, workers=()),
                             PolicySettings(max_workers=4), PolicyState(), now=0.0)
    assert decision.launch == 4
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..ports import WorkerInfo, WorkerState
from . import sizing
from .rates import ArrivalEstimate, ArrivalHistory, arrival_estimate, sub_window_rates

CAPACITY_STATES = frozenset({WorkerState.STARTING, WorkerState.READY, WorkerState.BUSY})
RATE_WINDOW_BOOTS = 2.0
RATE_WINDOW_LIMITS_S = (10.0, 60.0)
ONGOING_PARTS = 2  # window parts with arrivals that show requests are still coming


@dataclass(frozen=True)
class Observation:
    """What the controller saw in one tick.

    ``rate_per_worker`` is one worker's images/s and ``boot_s`` the launch-to-ready seconds,
    measured recently or remembered from a previous run; ``None`` when neither is known.
    """

    visible: int
    in_flight: int
    workers: tuple[WorkerInfo, ...] = ()
    rate_per_worker: float | None = None
    boot_s: float | None = None

    @property
    def backlog(self) -> int:
        return self.visible + self.in_flight


@dataclass(frozen=True)
class PolicySettings:
    """The policy's knobs (seconds, message counts, a fraction)."""

    max_workers: int
    min_workers: int = 0
    target_backlog_per_worker: float = 10.0  # cold only
    scale_out_delay_s: float = 0.0
    scale_in_delay_s: float = 0.0
    idle_before_drain_s: float = 1.0
    target_latency_s: float | None = None  # None: 1.5 x the boot time
    utilisation: float = 0.9  # the busy fraction workers are sized for

    def __post_init__(self) -> None:
        if not 0 <= self.min_workers <= self.max_workers:
            raise ValueError(
                f"need 0 <= min_workers ({self.min_workers}) <= max_workers ({self.max_workers})"
            )
        if self.target_backlog_per_worker <= 0:
            raise ValueError("target_backlog_per_worker must be positive")
        if self.target_latency_s is not None and self.target_latency_s <= 0:
            raise ValueError("target_latency_s must be positive (or None for 1.5 x boot time)")
        if not 0 < self.utilisation <= 1:
            raise ValueError("utilisation must be in (0, 1]")


@dataclass(frozen=True)
class PolicyState:
    """What the policy carries from tick to tick."""

    short_since: float | None = None  # capacity short of the plan since
    surplus_since: float | None = None
    backlog: int | None = None  # at the previous tick
    arrivals: ArrivalHistory = ArrivalHistory()
    rate_needs: tuple[tuple[float, int], ...] = ()  # (time, workers the rate asked for)


@dataclass(frozen=True)
class PolicyInputs:
    """What a decision was based on, for status pages and logs (rates per second, seconds)."""

    mode: str  # "rates" or "cold"
    backlog: int
    capacity: int
    arrival_rate: float | None = None
    arrival_trend: float | None = None
    rate_per_worker: float | None = None
    boot_s: float | None = None
    deadline_s: float | None = None
    for_rate: int | None = None  # held for the ski-rental window
    for_backlog: int | None = None  # more workers the backlog asks for
    target: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """Launch ``launch`` workers and/or drain the workers ``drain``, because of ``reason``."""

    launch: int = 0
    drain: tuple[str, ...] = ()
    reason: str = "steady"
    inputs: PolicyInputs | None = field(default=None, compare=False)

    @property
    def is_action(self) -> bool:
        return self.launch > 0 or bool(self.drain)


@dataclass(frozen=True)
class NamedPolicy:
    """A policy function with its name and initial state (ours, or a baseline to compare)."""

    name: str
    decide: Callable[[Observation, PolicySettings, Any, float], tuple[Decision, Any]]
    initial_state: Callable[[], Any]
    interval_s: float | None = None  # how often it is evaluated; None: the controller's tick
    notes: str = field(default="", compare=False)


@dataclass(frozen=True)
class DrainRule:
    """READY workers idle ``idle_s`` may be drained while ``keep`` workers are left."""

    keep: int
    idle_s: float


@dataclass(frozen=True)
class Plan:
    """Capacity to reach now (``up``), to keep (``keep``), and which idle workers may go."""

    up: int
    keep: int
    drain_rules: tuple[DrainRule, ...]
    why: str
    inputs: PolicyInputs
    rate_needs: tuple[tuple[float, int], ...] = ()


def capacity(workers: Sequence[WorkerInfo]) -> int:
    """Workers that serve or soon will: starting, ready and busy (not draining)."""
    return sum(1 for w in workers if w.state in CAPACITY_STATES)


def serving(workers: Sequence[WorkerInfo]) -> int:
    return sum(1 for w in workers if w.state in (WorkerState.READY, WorkerState.BUSY))


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


def all_idle(workers: Sequence[WorkerInfo], now: float, idle_s: float) -> bool:
    """Whether every worker that counts as capacity is READY and idle for ``idle_s``."""
    return len(idle_workers(workers, now, idle_s)) == capacity(workers)


def held_need(
    needs: tuple[tuple[float, int], ...], now: float, hold_s: float, need: int
) -> tuple[int, tuple[tuple[float, int], ...]]:
    """The largest rate need of the last ``hold_s`` (this one included), and the kept history."""
    kept = (*((t, n) for t, n in needs if now - t < hold_s), (now, need))
    return max(n for _, n in kept), kept


def cold_plan(obs: Observation, settings: PolicySettings, state: PolicyState) -> Plan:
    wanted = wanted_for_backlog(obs, settings, state.backlog)
    inputs = PolicyInputs("cold", obs.backlog, capacity(obs.workers), target=wanted,
                          rate_per_worker=obs.rate_per_worker, boot_s=obs.boot_s)
    why = (f"rate or boot time not measured yet: backlog {obs.backlog} at "
           f"{settings.target_backlog_per_worker:g} per worker wants {wanted}")
    return Plan(wanted, wanted, (DrainRule(wanted, settings.idle_before_drain_s),), why, inputs)


def rate_plan(
    obs: Observation, settings: PolicySettings, state: PolicyState, history: ArrivalHistory,
    now: float,
) -> Plan:
    rate, boot = float(obs.rate_per_worker or 0.0), float(obs.boot_s or 0.0)
    window = rate_window_s(boot)
    est = arrival_estimate(history, now, window) or ArrivalEstimate(0.0, 0.0)
    for_rate = sizing.workers_for_rate(est.ahead(boot), rate, settings.utilisation)
    held, needs = held_need(state.rate_needs, now, boot, for_rate)
    ongoing = int(requests_ongoing(history, now, window))
    deadline = sizing.deadline_s(settings.target_latency_s, boot)
    starting = [w.launched_at for w in obs.workers if w.state == WorkerState.STARTING]
    have = capacity(obs.workers)
    extra = sizing.extra_for_backlog(
        obs.backlog, est.rate, rate, boot, deadline, serving(obs.workers),
        sizing.starting_left_s(starting, boot, now),
    )
    keep = max(held, ongoing,
               sizing.workers_to_keep_for_backlog(obs.backlog, est.rate, rate, deadline))
    up = max(for_rate, have + extra)
    inputs = PolicyInputs(
        "rates", obs.backlog, have, round(est.rate, 3), round(est.trend, 5), rate, boot,
        round(deadline, 3), held, extra, max(up, keep),
    )
    why = (f"arrivals {est.rate:.2f}/s (trend {est.trend:+.3f}/s per s) at {rate:g}/s per "
           f"worker need {for_rate} (held {held} for {boot:.1f} s); backlog {obs.backlog} by "
           f"{deadline:.1f} s needs {extra} more")
    idle_window = max(boot, settings.idle_before_drain_s)
    rules = (
        # Beyond what the rate (held) and the backlog ask for: at once while a sustained rate
        # shows the surplus, after the usual idle time when nothing is arriving.
        DrainRule(keep, 0.0 if est.rate > 0 else settings.idle_before_drain_s),
        # Idle for a whole idle window: let it go unless the rate (held) asks for it as
        # headroom of a fleet that is otherwise busy. When every worker has been idle that
        # long nothing arrived for a boot time: the next request is cheaper to boot for.
        DrainRule(0 if all_idle(obs.workers, now, idle_window) else held, idle_window),
    )
    return Plan(up, keep, rules, why, inputs, needs)


def clamp(wanted: int, settings: PolicySettings) -> int:
    return max(settings.min_workers, min(settings.max_workers, wanted))


def after_delay(since: float | None, now: float, delay_s: float) -> tuple[bool, float]:
    """(whether a condition seen since ``since`` has lasted ``delay_s``, the new ``since``)."""
    start = now if since is None else since
    return now - start >= delay_s, start


def launch_count(target: int, workers: Sequence[WorkerInfo], settings: PolicySettings) -> int:
    """Workers to launch to reach ``target``: starting ones count, and never past the cap."""
    have = capacity(workers)
    return max(0, min(target, settings.max_workers) - have)


def idle_workers(workers: Sequence[WorkerInfo], now: float, idle_s: float) -> list[WorkerInfo]:
    """READY workers idle for at least ``idle_s``, longest idle first."""
    idle = [
        w for w in workers
        if w.state == WorkerState.READY and w.idle_since is not None
        and now - w.idle_since >= idle_s
    ]
    return sorted(idle, key=lambda w: (w.idle_since or 0.0, w.worker_id))


def drain_choice(
    keep: int, workers: Sequence[WorkerInfo], settings: PolicySettings, now: float,
    rules: Sequence[DrainRule] | None = None,
) -> tuple[str, ...]:
    """Idle workers to drain, longest idle first, never below ``min_workers``.

    Each rule allows the READY workers idle ``rule.idle_s`` while ``rule.keep`` are left; the
    default rule is ``keep`` with ``idle_before_drain_s``.
    """
    have = capacity(workers)
    rules = rules if rules is not None else (DrainRule(keep, settings.idle_before_drain_s),)
    count = max((min(len(idle_workers(workers, now, r.idle_s)), have - r.keep) for r in rules),
                default=0)
    count = min(count, have - settings.min_workers)
    if count <= 0:
        return ()
    return tuple(w.worker_id for w in idle_workers(workers, now, 0.0)[:count])


def decide(
    obs: Observation, settings: PolicySettings, state: PolicyState, now: float
) -> tuple[Decision, PolicyState]:
    """One tick of imgrec's policy (see the module docstring)."""
    history = state.arrivals.observe(now, obs.backlog, obs.workers)
    plan = rate_plan(obs, settings, state, history, now) if knows_rates(obs) \
        else cold_plan(obs, settings, state)
    state = replace(state, backlog=obs.backlog, arrivals=history, rate_needs=plan.rate_needs)
    return act(plan, obs, settings, state, now)


def decide_by_ratio(
    obs: Observation, settings: PolicySettings, state: PolicyState, now: float
) -> tuple[Decision, PolicyState]:
    """imgrec's previous policy: the cold rules always, whatever is known (a baseline)."""
    plan = cold_plan(obs, settings, state)
    return act(plan, obs, settings, replace(state, backlog=obs.backlog), now)


def act(
    plan: Plan, obs: Observation, settings: PolicySettings, state: PolicyState, now: float
) -> tuple[Decision, PolicyState]:
    """Turn a plan into a decision through the bounds, the delays, launch and drain choice."""
    have = capacity(obs.workers)
    up, keep = clamp(plan.up, settings), clamp(plan.keep, settings)
    why = f"{plan.why}; bounds [{settings.min_workers}, {settings.max_workers}]; have {have}"
    inputs = plan.inputs
    if up > have:
        ok, since = after_delay(state.short_since, now, settings.scale_out_delay_s)
        new_state = replace(state, short_since=since, surplus_since=None)
        if not ok:
            return Decision(reason=f"{why}; waiting out the scale-out delay",
                            inputs=inputs), new_state
        launch = launch_count(up, obs.workers, settings)
        return Decision(launch=launch, reason=f"{why}: launch {launch}", inputs=inputs), new_state
    rules = tuple(DrainRule(clamp(r.keep, settings), r.idle_s) for r in plan.drain_rules)
    drain = drain_choice(keep, obs.workers, settings, now, rules)
    if keep < have or drain:
        ok, since = after_delay(state.surplus_since, now, settings.scale_in_delay_s)
        new_state = replace(state, short_since=None, surplus_since=since)
        if not ok:
            return Decision(reason=f"{why}; waiting out the scale-in delay",
                            inputs=inputs), new_state
        if not drain:
            return Decision(reason=f"{why}; keep {keep}, no worker idle for "
                                   f"{rules[0].idle_s:g} s", inputs=inputs), new_state
        return Decision(drain=drain, reason=f"{why}; keep {keep}: drain {len(drain)} idle",
                        inputs=inputs), new_state
    return Decision(reason=f"{why}; keep {keep}", inputs=inputs), \
        replace(state, short_since=None, surplus_since=None)


OURS = NamedPolicy(
    "ours", decide, PolicyState,
    notes="arrival rate, service rate and boot time; ski-rental scale-in; cold: backlog ratio",
)
