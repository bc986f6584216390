"""Replay a trace through a scaling policy with simulated cloud workers (no processes, no sleep).

A simulated worker takes ``boot_s`` (plus or minus up to ``boot_jitter_s``) from launch to ready
(an EC2 instance: 30-60 s) and then serves one image every ``1 / rate_per_worker`` seconds. A
queued request goes to an idle worker: the earliest launched (``dispatch="first"``), a random one
(``"random"``, as SQS hands messages to whichever long poll it picks) or the longest idle
(``"fair"``). A policy is evaluated every ``interval_s`` (its own, or the tick) and its decision
applied at once; a stopped worker finishes the image in hand. Billing is per second from launch
to stop, as on EC2.

The policy sees only what a real controller sees: the queue's depth (visible, in flight), each
worker as its last heartbeat described it (``sim_workers``: state flips written within 0.25 s,
``processed`` refreshed every ``heartbeat_s``; the fleet itself knows which workers it drained)
and the per-worker rate and boot time, once measured (the first answer, the first worker ready)
or, ``warm``, remembered from a previous run from the first tick.
"""

from __future__ import annotations

import random
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..percentile import percentile
from .policy import Decision, NamedPolicy, Observation, PolicySettings
from .sim_workers import SimWorker
from .traces import Trace

Dispatch = Literal["first", "random", "fair"]
DISPATCHES: tuple[Dispatch, ...] = ("first", "random", "fair")


@dataclass(frozen=True)
class SimConfig:
    """The simulated cloud: boot time, per-worker rate, the policy's settings and its tick."""

    settings: PolicySettings
    boot_s: float = 40.0
    rate_per_worker: float = 5.0
    tick_s: float = 1.0
    step_s: float = 0.05
    tail_s: float = 1800.0  # how long to keep going after the last arrival
    sample_s: float = 1.0
    dispatch: Dispatch = "first"
    heartbeat_s: float = 2.0
    boot_jitter_s: float = 0.0
    seed: int = 1


@dataclass(frozen=True)
class Contender:
    """A policy to run, and whether it starts knowing the rate and boot time (``warm``)."""

    policy: NamedPolicy
    warm: bool = True

    @property
    def label(self) -> str:
        return self.policy.name if self.warm else f"{self.policy.name} (cold)"


@dataclass
class Sample:
    t: float
    backlog: int
    workers: int


@dataclass
class SimResult:
    """How one policy did on one trace (seconds; latency from arrival to answer)."""

    policy: str
    trace: str
    requests: int
    served: int
    completion_s: float | None
    mean_latency_s: float | None
    p95_latency_s: float | None
    p99_latency_s: float | None
    peak_workers: int
    worker_seconds: float
    zero_after_s: float | None
    launches: int = 0
    samples: list[Sample] = field(default_factory=list, repr=False)
    decisions: list[tuple[float, Decision]] = field(default_factory=list, repr=False)


class _Run:
    def __init__(self, trace: Trace, contender: Contender, config: SimConfig) -> None:
        self.trace, self.contender, self.config = trace, contender, config
        self.policy = contender.policy
        self.service_s = 1.0 / config.rate_per_worker
        self.rng = random.Random(config.seed)
        self.queue: deque[float] = deque()
        self.workers: list[SimWorker] = []
        self.latencies: list[float] = []
        self.last_done = 0.0
        self.state = self.policy.initial_state()
        self.samples: list[Sample] = []
        self.decisions: list[tuple[float, Decision]] = []
        self.zero_since: float | None = None
        self.peak = 0

    def alive(self) -> list[SimWorker]:
        return [w for w in self.workers if w.stopped_at is None]

    def in_dispatch_order(self, now: float) -> list[SimWorker]:
        alive = self.alive()
        if self.config.dispatch == "random":
            self.rng.shuffle(alive)
        elif self.config.dispatch == "fair":
            alive.sort(key=lambda w: w.idle_since if w.idle_since is not None else now)
        return alive

    def serve(self, now: float) -> None:
        for w in self.in_dispatch_order(now):
            for done_at, arrival in w.advance(now, self.queue, self.service_s):
                self.latencies.append(done_at - arrival)
                self.last_done = max(self.last_done, done_at)
        for w in self.alive():
            w.tick(now)

    def observe(self, now: float) -> Observation:
        alive = self.alive()
        booted = [w.ready_at - w.launched_at for w in self.workers if w.ready_at <= now]
        rate = self.config.rate_per_worker if self.latencies or self.contender.warm else None
        boot = statistics.median(booted) if booted else (
            self.config.boot_s if self.contender.warm else None)
        return Observation(
            visible=len(self.queue),
            in_flight=sum(1 for w in alive if w.current is not None),
            workers=tuple(w.info() for w in alive),
            rate_per_worker=rate,
            boot_s=boot,
        )

    def apply(self, decision: Decision, now: float) -> None:
        by_id = {w.worker_id: w for w in self.alive()}
        for worker_id in decision.drain:
            w = by_id.get(worker_id)
            if w is not None:
                w.stop(now)
        room = self.config.settings.max_workers - sum(
            1 for w in self.alive() if not w.stop_requested
        )
        jitter = self.config.boot_jitter_s
        for _ in range(max(0, min(decision.launch, room))):
            boot = max(0.0, self.config.boot_s + (self.rng.uniform(-jitter, jitter)
                                                   if jitter else 0.0))
            self.workers.append(SimWorker(f"w{len(self.workers)}", now, now + boot,
                                          heartbeat_s=self.config.heartbeat_s))

    def run(self) -> SimResult:
        cfg, arrivals = self.config, self.trace.arrivals
        interval = self.policy.interval_s or cfg.tick_s
        horizon = (arrivals[-1] if arrivals else 0.0) + cfg.tail_s
        i, step, next_eval, next_sample = 0, 0, 0.0, 0.0
        while True:
            now = step * cfg.step_s
            while i < len(arrivals) and arrivals[i] <= now:
                self.queue.append(arrivals[i])
                i += 1
            self.serve(now)
            if now >= next_eval - 1e-9:
                decision, self.state = self.policy.decide(
                    self.observe(now), cfg.settings, self.state, now
                )
                if decision.is_action:
                    self.decisions.append((now, decision))
                self.apply(decision, now)
                next_eval += interval
            alive = len(self.alive())
            self.peak = max(self.peak, alive)
            self.zero_since = (self.zero_since if self.zero_since is not None else now) \
                if alive == 0 else None
            if now >= next_sample - 1e-9:
                busy = sum(1 for w in self.alive() if w.current is not None)
                self.samples.append(Sample(now, len(self.queue) + busy, alive))
                next_sample += cfg.sample_s
            all_served = i == len(arrivals) and len(self.latencies) == len(arrivals)
            if (all_served and alive <= cfg.settings.min_workers) or now >= horizon:
                return self.result(now)
            step += 1

    def result(self, end: float) -> SimResult:
        lat, arrivals = self.latencies, self.trace.arrivals
        done = len(lat) == len(arrivals)
        cost = sum((w.stopped_at if w.stopped_at is not None else end) - w.launched_at
                   for w in self.workers)
        zero_after = None
        if done and self.zero_since is not None:
            zero_after = max(0.0, self.zero_since - self.last_done)
        return SimResult(
            policy=self.contender.label,
            trace=self.trace.name,
            requests=len(arrivals),
            served=len(lat),
            completion_s=(self.last_done - arrivals[0]) if done and arrivals else None,
            mean_latency_s=statistics.fmean(lat) if lat else None,
            p95_latency_s=percentile(lat, 95),
            p99_latency_s=percentile(lat, 99),
            peak_workers=self.peak,
            worker_seconds=cost,
            zero_after_s=zero_after,
            launches=len(self.workers),
            samples=self.samples,
            decisions=self.decisions,
        )


def simulate(
    trace: Trace, policy: NamedPolicy | Contender, config: SimConfig
) -> SimResult:
    """Run ``trace`` through ``policy`` (warm unless a cold ``Contender``) on ``config``."""
    contender = policy if isinstance(policy, Contender) else Contender(policy)
    return _Run(trace, contender, config).run()


def simulate_all(
    traces: list[Trace], policies: Sequence[NamedPolicy | Contender], config: SimConfig,
    progress: Callable[[str, str], None] | None = None,
) -> list[SimResult]:
    """Every policy on every trace, in order; ``progress(trace, policy)`` before each run."""
    results: list[SimResult] = []
    for trace in traces:
        for policy in policies:
            contender = policy if isinstance(policy, Contender) else Contender(policy)
            if progress is not None:
                progress(trace.name, contender.label)
            results.append(simulate(trace, contender, config))
    return results
