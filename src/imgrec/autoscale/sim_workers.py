"""One simulated worker: boots, serves one request at a time, and reports itself by heartbeat.

The controller never sees a worker directly: it sees the worker's last heartbeat (as written by
``imgrec.heartbeat.Heartbeat``): a state change is written at once unless the previous write is
under ``FLIP_MIN_INTERVAL_S`` old (then at the next beat after that), and otherwise the record,
with its ``processed`` count, is rewritten every ``heartbeat_s``. ``info()`` gives that view, with
DRAINING for a worker the fleet has been told to stop (the fleet knows that without a heartbeat).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..ports import WorkerInfo, WorkerState

FLIP_MIN_INTERVAL_S = 0.25


@dataclass
class SimWorker:
    worker_id: str
    launched_at: float
    ready_at: float
    free_at: float = field(init=False)
    idle_since: float | None = None
    current: float | None = None  # arrival time of the request in hand
    stop_requested: bool = False
    stopped_at: float | None = None
    processed: int = 0
    heartbeat_s: float = 2.0
    # The heartbeat record as the worker keeps it, and as last written (what the fleet reads).
    noted: WorkerState = WorkerState.STARTING
    noted_idle_since: float | None = None
    seen: WorkerInfo | None = None
    seen_at: float = float("-inf")

    def __post_init__(self) -> None:
        self.free_at = self.ready_at

    def true_state(self, now: float) -> WorkerState:
        if now < self.ready_at:
            return WorkerState.STARTING
        return WorkerState.BUSY if self.current is not None else WorkerState.READY

    def advance(
        self, now: float, queue: deque[float], service_s: float
    ) -> list[tuple[float, float]]:
        """Serve from ``queue`` up to ``now``; the (done at, arrival) of each request finished."""
        done: list[tuple[float, float]] = []
        while self.stopped_at is None and self.ready_at <= now and self.free_at <= now:
            if self.current is not None:
                done.append((self.free_at, self.current))
                self.current, self.idle_since = None, self.free_at
                self.processed += 1
            if self.stop_requested:
                self.stopped_at = self.free_at
            elif queue:
                arrival = queue.popleft()
                start = max(self.free_at, arrival)
                self.current, self.idle_since = arrival, None
                self.free_at = start + service_s
                self.beat(WorkerState.BUSY, start)
            else:
                if self.idle_since is None:
                    self.idle_since = self.free_at
                self.beat(WorkerState.READY, self.free_at)
                self.free_at = now
                break
        return done

    def stop(self, now: float) -> None:
        """Drain: finish the request in hand (if any), then stop."""
        self.stop_requested = True
        if self.current is None:
            self.stopped_at = now

    def tick(self, now: float) -> None:
        """The beat a live worker makes between requests (a due or deferred write)."""
        state = self.true_state(now)
        if state != WorkerState.STARTING:  # no heartbeat before the model is loaded
            self.beat(state, now)

    def beat(self, state: WorkerState, t: float) -> None:
        """``imgrec.heartbeat.Heartbeat.beat`` at time ``t``: note the state, write if due."""
        changed = state != self.noted
        if changed:
            self.noted_idle_since = t if state == WorkerState.READY else None
        since = t - self.seen_at
        flips = {WorkerState.READY, WorkerState.BUSY}
        too_soon = changed and state in flips and self.noted in flips \
            and since < FLIP_MIN_INTERVAL_S
        deferred = self.seen is not None and state != self.seen.state \
            and since >= FLIP_MIN_INTERVAL_S
        self.noted = state
        if (changed and not too_soon) or since >= self.heartbeat_s or deferred:
            self.seen = WorkerInfo(self.worker_id, state, self.launched_at, t,
                                   self.noted_idle_since, self.processed)
            self.seen_at = t

    def info(self) -> WorkerInfo:
        """The worker as the controller sees it."""
        if self.seen is None:
            info = WorkerInfo(self.worker_id, WorkerState.STARTING, self.launched_at,
                              self.launched_at)
        else:
            info = self.seen
        if self.stop_requested:
            return WorkerInfo(info.worker_id, WorkerState.DRAINING, info.launched_at,
                              info.last_seen, None, info.processed)
        return info
