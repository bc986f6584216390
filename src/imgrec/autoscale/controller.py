"""The autoscaler's I/O loop: every tick observe the queue and fleet, decide, act, record.

The decision itself is the pure ``policy.decide``; this module only gathers its inputs (queue
depth, workers, recent throughput, measured boot time), applies the decision through the
``Fleet`` port, logs it with its reason, and keeps the recent decisions and a per-tick history
for ``GET /api/v1/status`` and ``/metrics``. With ``--workers N`` the same loop runs with
min = max = N ("fixed" mode), which also replaces a worker that crashed.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..config import Settings
from ..ports import Fleet, FleetHealth, Queue, WorkerInfo, WorkerState
from .answers import AnswerStats, RecentAnswers
from .memory import EstimateMemory
from .policy import OURS, Decision, NamedPolicy, Observation, PolicySettings
from .stuck import boot_deadline, stuck_workers
from .usage import Usage, UsageMeter

log = logging.getLogger(__name__)

Mode = Literal["autoscale", "fixed"]
_MAX_DECISIONS = 50
_MAX_CRASH_BACKOFF_S = 30.0


@dataclass(frozen=True)
class DecisionRecord:
    """A decision that did something: when, how many launched, which drained, why, and the
    inputs the policy used (arrival and service rates, boot time, target)."""

    time: float
    launch: int
    drain: tuple[str, ...]
    reason: str
    inputs: dict[str, Any] | None = None


@dataclass(frozen=True)
class HistorySample:
    """The state of the service at one tick."""

    t: float
    visible: int
    in_flight: int
    workers: int
    busy: int
    answered_per_s: float
    p50_ms: float | None


def policy_settings(settings: Settings) -> tuple[Mode, PolicySettings]:
    """The policy's settings from imgrec's: pinned (``workers``) or elastic."""
    if settings.workers is not None:
        n = settings.workers
        return "fixed", PolicySettings(max_workers=n, min_workers=n)
    return "autoscale", PolicySettings(
        max_workers=settings.max_workers,
        min_workers=settings.min_workers,
        target_backlog_per_worker=settings.target_backlog_per_worker,
        scale_out_delay_s=settings.scale_out_delay_s,
        scale_in_delay_s=settings.scale_in_delay_s,
        idle_before_drain_s=settings.idle_before_drain_s,
        target_latency_s=settings.target_latency_s,
    )


class Controller:
    """Runs ``policy`` against ``queue`` and ``fleet`` every ``tick_s`` seconds in a thread."""

    def __init__(
        self,
        queue: Queue,
        fleet: Fleet,
        settings: PolicySettings,
        *,
        mode: Mode = "autoscale",
        tick_s: float = 0.5,
        policy: NamedPolicy = OURS,
        answers: RecentAnswers | None = None,
        history_s: float = 600.0,
        clock: Callable[[], float] = time.time,
        boot_deadline_s: float | None = None,
        silent_after_s: float = 120.0,
        memory: EstimateMemory | None = None,
    ) -> None:
        self.queue, self.fleet, self.settings = queue, fleet, settings
        self.mode: Mode = mode
        self.tick_s = tick_s
        self.policy = policy
        self.answers = answers or RecentAnswers()
        self.decisions: deque[DecisionRecord] = deque(maxlen=_MAX_DECISIONS)
        self.history: deque[HistorySample] = deque(maxlen=max(1, int(history_s / tick_s)))
        self.workers: list[WorkerInfo] = []
        self.ticks = 0
        self.launched = 0
        self.drained = 0
        self._clock = clock
        self._state: Any = policy.initial_state()
        self._health = FleetHealth()
        self.memory = memory
        self.boot_deadline_s = boot_deadline_s
        self.silent_after_s = silent_after_s
        self.given_up: deque[DecisionRecord] = deque(maxlen=_MAX_DECISIONS)
        self._given_up_total = 0
        self._crashes_seen = 0
        self._backoff_s = 0.0
        self._hold_launches_until = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._empty = False  # the last tick saw no worker and launched none
        self._thread: threading.Thread | None = None
        self.usage_meter = UsageMeter()

    def usage(self) -> Usage:
        """Worker-seconds and images since start (for worker-seconds per image)."""
        with self._lock:
            return self.usage_meter.usage()

    def worker_kind(self) -> str:
        """What a worker runs on ("local", or the EC2 instance type), as of the last tick."""
        return self._health.worker_kind

    def boot_s(self) -> float | None:
        """Median launch-to-ready seconds of the recent workers, as of the last tick."""
        readiness = self._health.launch_to_ready_s
        return statistics.median(readiness) if readiness else None

    def observe(self) -> tuple[Observation, AnswerStats]:
        depth = self.queue.depth()
        workers = tuple(self.fleet.list())
        self._health = self.fleet.health()
        stats = self.answers.stats()
        obs = Observation(
            visible=depth.visible, in_flight=depth.in_flight, workers=workers,
            rate_per_worker=stats.rate_per_worker, boot_s=self.boot_s(),
        )
        if self.memory is not None:
            kind = self._health.worker_kind
            self.memory.remember(kind, rate_per_worker=obs.rate_per_worker, boot_s=obs.boot_s)
            obs = self.memory.estimate(kind).fill(obs)  # what this run has not measured yet
        return obs, stats

    def tick(self) -> Decision:
        """Observe, decide, act and record once; returns what was decided."""
        obs, stats = self.observe()
        now = self._clock()
        obs = self._give_up_on_stuck(obs, now)
        decision, self._state = self.policy.decide(obs, self.settings, self._state, now)
        decision = self._hold_after_crashes(decision, now)
        if decision.drain:
            self.fleet.drain(decision.drain)
        launched = self.fleet.launch(decision.launch) if decision.launch else []
        self._record(obs, stats, decision, len(launched), now)
        return decision

    def _give_up_on_stuck(self, obs: Observation, now: float) -> Observation:
        """Terminate workers past the boot deadline or silent too long; the policy replaces them."""
        deadline = boot_deadline(self.boot_s(), self.boot_deadline_s)
        stuck = stuck_workers(obs.workers, now, boot_deadline_s=deadline,
                              silent_after_s=self.silent_after_s)
        if not stuck:
            return obs
        self.fleet.terminate([worker_id for worker_id, _ in stuck])
        with self._lock:
            for worker_id, why in stuck:
                log.warning("giving up on worker %s: %s", worker_id, why)
                self.given_up.appendleft(DecisionRecord(now, 0, (worker_id,),
                                                        f"terminated {worker_id}: {why}"))
            self._given_up_total += len(stuck)
        gone = {worker_id for worker_id, _ in stuck}
        return replace(obs, workers=tuple(w for w in obs.workers if w.worker_id not in gone))

    def problems(self) -> list[str]:
        """What keeps the fleet from its target: held launches, workers given up on."""
        with self._lock:
            found = [d.reason for d in self.given_up]
        if self._health.launch_problem:
            found.insert(0, self._health.launch_problem)
        return found

    def _hold_after_crashes(self, decision: Decision, now: float) -> Decision:
        """Back off launching (1 s, doubling to 30 s) while new workers keep crashing (or
        never become ready)."""
        crashed = self._health.crashed + self._given_up_total
        if crashed > self._crashes_seen:
            self._backoff_s = min(_MAX_CRASH_BACKOFF_S, max(1.0, 2 * self._backoff_s))
            self._hold_launches_until = now + self._backoff_s
            log.warning("%d worker(s) crashed; holding launches for %.0f s",
                        crashed - self._crashes_seen, self._backoff_s)
            self._crashes_seen = crashed
        elif self._backoff_s and any(w.state == WorkerState.READY for w in self.workers):
            self._backoff_s = 0.0
        if decision.launch and now < self._hold_launches_until:
            return replace(decision, launch=0,
                           reason=f"{decision.reason} (held: workers crashed recently)")
        return decision

    def _record(self, obs: Observation, stats: AnswerStats, decision: Decision, launched: int,
                now: float) -> None:
        with self._lock:
            self.ticks += 1
            self.workers = list(obs.workers)
            self._empty = not obs.workers and not launched
            self.usage_meter.observe(now, obs.workers)
            self.history.append(HistorySample(
                t=now, visible=obs.visible, in_flight=obs.in_flight,
                workers=sum(1 for w in obs.workers if w.state != WorkerState.DRAINING),
                busy=sum(1 for w in obs.workers if w.state == WorkerState.BUSY),
                answered_per_s=stats.answered_per_s, p50_ms=stats.p50_ms,
            ))
            if decision.is_action:
                self.launched += launched
                self.drained += len(decision.drain)
                self.decisions.appendleft(
                    DecisionRecord(now, launched, decision.drain, decision.reason,
                                   decision.inputs.to_dict() if decision.inputs else None)
                )
        if decision.is_action:
            log.info("scaling: %s", decision.reason)
        else:
            log.debug("scaling: %s", decision.reason)

    def last_workers(self) -> list[WorkerInfo] | None:
        """The fleet as the last tick saw it (at most ``tick_s`` old); None before the first."""
        with self._lock:
            return list(self.workers) if self.ticks else None

    def recent_decisions(self) -> list[DecisionRecord]:
        with self._lock:
            return list(self.decisions)

    def recent_history(self) -> list[HistorySample]:
        with self._lock:
            return list(self.history)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="autoscaler", daemon=True)
        self._thread.start()
        log.info("autoscaler started (%s, %d..%d workers, tick %.2f s)", self.mode,
                 self.settings.min_workers, self.settings.max_workers, self.tick_s)

    def wake(self) -> None:
        """Tick now if the fleet was empty at the last tick: a request just queued for no
        worker should not wait up to ``tick_s`` to be seen (cold start). Cheap, thread-safe,
        and a no-op while there are workers, so the web tier may call it for every request."""
        with self._lock:
            empty = self._empty
        if empty:
            self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the loop must outlive a failed tick
                log.exception("autoscaler tick failed")
            self._wake.wait(max(0.0, self.tick_s - (time.monotonic() - started)))
            self._wake.clear()
