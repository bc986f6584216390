"""The policy's vocabulary: what it observes, its settings and state, what it decides.

Split from ``policy`` (which re-exports every name) so that the plans (``plans``) and the steps
that turn a plan into a decision (``policy``) can share them. See ``policy`` for the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..ports import WorkerInfo, WorkerState
from .rates import ArrivalHistory

CAPACITY_STATES = frozenset({WorkerState.STARTING, WorkerState.READY, WorkerState.BUSY})


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
    utilisation: float = 1.0  # the busy fraction workers are sized for

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
    """What a decision was based on, for status pages and logs.

    Rates are per second (``arrival_trend`` per second per second), times in seconds, workers
    counted. ``None``: not used (cold) or not measured. ``deadline_s`` is the latency target in
    effect (``target_latency_s``, or 1.5 x boot when that is None).
    """

    mode: str  # "rates" or "cold"
    backlog: int
    capacity: int
    arrival_rate: float | None = None
    arrival_trend: float | None = None
    rate_per_worker: float | None = None
    boot_s: float | None = None
    target_latency_s: float | None = None
    deadline_s: float | None = None
    utilisation: float | None = None
    for_rate: int | None = None  # held for the ski-rental window
    for_backlog: int | None = None  # more workers the backlog asks for
    target_workers: int = 0

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


def idle_workers(workers: Sequence[WorkerInfo], now: float, idle_s: float) -> list[WorkerInfo]:
    """READY workers idle for at least ``idle_s``, longest idle first."""
    idle = [
        w for w in workers
        if w.state == WorkerState.READY and w.idle_since is not None
        and now - w.idle_since >= idle_s
    ]
    return sorted(idle, key=lambda w: (w.idle_since or 0.0, w.worker_id))


def all_idle(workers: Sequence[WorkerInfo], now: float, idle_s: float) -> bool:
    """Whether every worker that counts as capacity is READY and idle for ``idle_s``."""
    return len(idle_workers(workers, now, idle_s)) == capacity(workers)
