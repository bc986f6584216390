"""imgrec's scaling policy: a pure function from what the controller saw to what it should do.

``decide(observation, settings, state, now) -> (decision, state)`` does no I/O and reads no clock;
the controller (and the simulator) pass ``now`` in. It is built from small named steps:

1. ``wanted_for_backlog``: one worker per ``target_backlog_per_worker`` messages (visible and in
   flight), but no launch when the workers already serving will clear the backlog before a new
   worker could be ready and the backlog is not growing (``skip_launch_that_cannot_help``).
2. ``clamp``: between ``min_workers`` and ``max_workers``.
3. ``after_delay``: a shortage (or a surplus) must last ``scale_out_delay_s`` (``scale_in_delay_s``)
   before it is acted on; both default to 0, so a backlog is met within one tick.
4. ``launch_count`` / ``drain_choice``: workers still starting count as capacity, so a burst never
   launches the cap twice; only workers idle (READY) for ``idle_before_drain_s`` are drained,
   longest idle first, never below ``min_workers``.

Example::

    decision, state = decide(Observation(visible=40, in_flight=0, workers=()),
                             PolicySettings(max_workers=4), PolicyState(), now=0.0)
    assert decision.launch == 4
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..ports import WorkerInfo, WorkerState

CAPACITY_STATES = frozenset({WorkerState.STARTING, WorkerState.READY, WorkerState.BUSY})


@dataclass(frozen=True)
class Observation:
    """What the controller saw in one tick.

    ``rate_per_worker`` is the recent images/s of one worker and ``boot_s`` the recent
    launch-to-ready time; ``None`` while not measured yet.
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
    """The policy's knobs (seconds and message counts)."""

    max_workers: int
    min_workers: int = 0
    target_backlog_per_worker: float = 10.0
    scale_out_delay_s: float = 0.0
    scale_in_delay_s: float = 0.0
    idle_before_drain_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_workers <= self.max_workers:
            raise ValueError(
                f"need 0 <= min_workers ({self.min_workers}) <= max_workers ({self.max_workers})"
            )
        if self.target_backlog_per_worker <= 0:
            raise ValueError("target_backlog_per_worker must be positive")


@dataclass(frozen=True)
class PolicyState:
    """Since when capacity has been short of (or above) what the backlog wants."""

    short_since: float | None = None
    surplus_since: float | None = None
    backlog: int | None = None  # at the previous tick


@dataclass(frozen=True)
class Decision:
    """Launch ``launch`` workers and/or drain the workers ``drain``, because of ``reason``."""

    launch: int = 0
    drain: tuple[str, ...] = ()
    reason: str = "steady"

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


def capacity(workers: Sequence[WorkerInfo]) -> int:
    """Workers that serve or soon will: starting, ready and busy (not draining)."""
    return sum(1 for w in workers if w.state in CAPACITY_STATES)


def serving(workers: Sequence[WorkerInfo]) -> int:
    return sum(1 for w in workers if w.state in (WorkerState.READY, WorkerState.BUSY))


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
    """Workers the backlog asks for, before the bounds."""
    wanted = math.ceil(obs.backlog / settings.target_backlog_per_worker)
    if skip_launch_that_cannot_help(obs, previous_backlog):
        wanted = min(wanted, capacity(obs.workers))
    return wanted


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
    target: int, workers: Sequence[WorkerInfo], settings: PolicySettings, now: float
) -> tuple[str, ...]:
    """Idle workers to drain to come down towards ``target`` (never below ``min_workers``)."""
    floor = max(target, settings.min_workers)
    surplus = capacity(workers) - floor
    if surplus <= 0:
        return ()
    chosen = idle_workers(workers, now, settings.idle_before_drain_s)[:surplus]
    return tuple(w.worker_id for w in chosen)


def decide(
    obs: Observation, settings: PolicySettings, state: PolicyState, now: float
) -> tuple[Decision, PolicyState]:
    """One tick of imgrec's policy: launch for a backlog at once, drain only idle workers."""
    have = capacity(obs.workers)
    wanted = wanted_for_backlog(obs, settings, state.backlog)
    state = replace(state, backlog=obs.backlog)
    target = clamp(wanted, settings)
    why = f"backlog {obs.backlog} wants {wanted}, bounds [{settings.min_workers}, " \
          f"{settings.max_workers}] -> {target}; have {have}"
    if target > have:
        ok, since = after_delay(state.short_since, now, settings.scale_out_delay_s)
        new_state = replace(state, short_since=since, surplus_since=None)
        if not ok:
            return Decision(reason=f"{why}; waiting out the scale-out delay"), new_state
        launch = launch_count(target, obs.workers, settings)
        return Decision(launch=launch, reason=f"{why}: launch {launch}"), new_state
    if target < have:
        ok, since = after_delay(state.surplus_since, now, settings.scale_in_delay_s)
        new_state = replace(state, short_since=None, surplus_since=since)
        if not ok:
            return Decision(reason=f"{why}; waiting out the scale-in delay"), new_state
        drain = drain_choice(target, obs.workers, settings, now)
        if not drain:
            return Decision(reason=f"{why}; no worker idle for "
                                   f"{settings.idle_before_drain_s:g} s"), new_state
        return Decision(drain=drain, reason=f"{why}: drain {len(drain)} idle"), new_state
    return Decision(reason=why), replace(state, short_since=None, surplus_since=None)


OURS = NamedPolicy(
    "ours", decide, PolicyState,
    notes="backlog per worker, starting workers count, drain only idle workers",
)
