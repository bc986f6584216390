"""Replay a trace through a scaling policy with simulated cloud workers (no processes, no sleep).

A simulated worker takes ``boot_s`` from launch to ready (an EC2 instance: 30-60 s) and then
serves one image every ``1 / rate_per_worker`` seconds. The queue hands a visible request to the
earliest-launched idle worker. A policy is evaluated every ``interval_s`` (its own, or the tick)
with the same ``Observation`` the controller builds, and its decision applied at once; a stopped
worker finishes the image in hand. Billing is per second from launch to stop, as on EC2.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..percentile import percentile
from ..ports import WorkerInfo, WorkerState
from .policy import Decision, NamedPolicy, Observation, PolicySettings
from .traces import Trace


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


@dataclass
class _Worker:
    worker_id: str
    launched_at: float
    ready_at: float
    free_at: float
    idle_since: float | None = None
    current: float | None = None  # arrival time of the request in hand
    stop_requested: bool = False
    stopped_at: float | None = None
    processed: int = 0

    def info(self, now: float) -> WorkerInfo:
        if self.stop_requested:
            state = WorkerState.DRAINING
        elif now < self.ready_at:
            state = WorkerState.STARTING
        elif self.current is not None:
            state = WorkerState.BUSY
        else:
            state = WorkerState.READY
        return WorkerInfo(self.worker_id, state, self.launched_at, now,
                          self.idle_since if state == WorkerState.READY else None, self.processed)


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
    samples: list[Sample] = field(default_factory=list, repr=False)


class _Run:
    def __init__(self, trace: Trace, policy: NamedPolicy, config: SimConfig) -> None:
        self.trace, self.policy, self.config = trace, policy, config
        self.service_s = 1.0 / config.rate_per_worker
        self.queue: deque[float] = deque()
        self.workers: list[_Worker] = []
        self.latencies: list[float] = []
        self.last_done = 0.0
        self.state = policy.initial_state()
        self.samples: list[Sample] = []
        self.zero_since: float | None = None
        self.peak = 0

    def alive(self) -> list[_Worker]:
        return [w for w in self.workers if w.stopped_at is None]

    def advance(self, w: _Worker, now: float) -> None:
        while w.stopped_at is None and w.ready_at <= now and w.free_at <= now:
            if w.current is not None:
                self.latencies.append(w.free_at - w.current)
                self.last_done = max(self.last_done, w.free_at)
                w.current, w.idle_since = None, w.free_at
                w.processed += 1
            if w.stop_requested:
                w.stopped_at = w.free_at
            elif self.queue:
                arrival = self.queue.popleft()
                w.current, w.idle_since = arrival, None
                w.free_at = max(w.free_at, arrival) + self.service_s
            else:
                if w.idle_since is None:
                    w.idle_since = w.free_at
                w.free_at = now
                break

    def observe(self, now: float) -> Observation:
        infos = tuple(w.info(now) for w in self.alive())
        booted = [w.ready_at - w.launched_at for w in self.workers if w.ready_at <= now]
        return Observation(
            visible=len(self.queue),
            in_flight=sum(1 for w in self.alive() if w.current is not None),
            workers=infos,
            rate_per_worker=self.config.rate_per_worker if self.latencies else None,
            boot_s=statistics.median(booted) if booted else None,
        )

    def apply(self, decision: Decision, now: float) -> None:
        by_id = {w.worker_id: w for w in self.alive()}
        for worker_id in decision.drain:
            w = by_id.get(worker_id)
            if w is None:
                continue
            w.stop_requested = True
            if w.current is None:
                w.stopped_at = now
        room = self.config.settings.max_workers - sum(
            1 for w in self.alive() if not w.stop_requested
        )
        for _ in range(max(0, min(decision.launch, room))):
            ready = now + self.config.boot_s
            self.workers.append(_Worker(f"w{len(self.workers)}", now, ready, ready))

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
            for w in self.alive():
                self.advance(w, now)
            if now >= next_eval - 1e-9:
                decision, self.state = self.policy.decide(
                    self.observe(now), cfg.settings, self.state, now
                )
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
            policy=self.policy.name,
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
            samples=self.samples,
        )


def simulate(trace: Trace, policy: NamedPolicy, config: SimConfig) -> SimResult:
    """Run ``trace`` through ``policy`` on the simulated cloud ``config``."""
    return _Run(trace, policy, config).run()


def simulate_all(
    traces: list[Trace], policies: list[NamedPolicy], config: SimConfig,
    progress: Callable[[str, str], None] | None = None,
) -> list[SimResult]:
    """Every policy on every trace, in order; ``progress(trace, policy)`` before each run."""
    results: list[SimResult] = []
    for trace in traces:
        for policy in policies:
            if progress is not None:
                progress(trace.name, policy.name)
            results.append(simulate(trace, policy, config))
    return results
