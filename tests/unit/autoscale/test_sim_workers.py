"""A simulated worker as the controller sees it: through its heartbeat."""

from __future__ import annotations

from collections import deque

import pytest

from imgrec.autoscale.sim_workers import SimWorker
from imgrec.ports import WorkerState


def test_starting_until_ready_then_ready_with_idle_since() -> None:
    w = SimWorker("w0", launched_at=0.0, ready_at=40.0)
    w.tick(10.0)
    assert w.info().state == WorkerState.STARTING
    w.advance(40.0, deque(), service_s=0.2)
    w.tick(40.0)
    info = w.info()
    assert (info.state, info.idle_since, info.launched_at) == (WorkerState.READY, 40.0, 0.0)


def test_serving_counts_completions_and_reports_them_with_the_next_write() -> None:
    w = SimWorker("w0", 0.0, 0.0, heartbeat_s=2.0)
    queue = deque([0.0] * 10)
    done = w.advance(1.0, queue, service_s=0.2)  # 5 served by 1.0, the 6th in hand
    assert [round(t, 1) for t, _ in done] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert w.info().state == WorkerState.BUSY and w.info().processed == 0  # written at 0.0
    w.tick(1.5)
    assert w.info().processed == 0  # a BUSY worker rewrites its record every heartbeat_s
    w.advance(2.1, queue, 0.2)  # the last one done at 2.0: the flip to READY is written
    assert (w.info().state, w.info().processed) == (WorkerState.READY, 10)


def test_a_flip_within_a_quarter_second_of_the_last_write_waits() -> None:
    w = SimWorker("w0", 0.0, 0.0)
    w.beat(WorkerState.READY, 0.0)
    w.beat(WorkerState.BUSY, 0.1)
    assert w.info().state == WorkerState.READY
    w.beat(WorkerState.BUSY, 0.3)  # the next beat, 0.25 s on: the deferred flip is written
    assert w.info().state == WorkerState.BUSY


def test_idle_since_is_that_of_the_last_flip_to_ready() -> None:
    w = SimWorker("w0", 0.0, 0.0)
    queue = deque([0.0])
    w.advance(0.1, queue, 0.2)  # busy until 0.2
    w.advance(1.0, queue, 0.2)  # idle from 0.2
    w.tick(1.0)
    assert w.info().state == WorkerState.READY and w.info().idle_since == 0.2
    queue.append(1.4)
    w.advance(1.5, queue, 0.2)
    w.advance(3.0, queue, 0.2)
    w.tick(3.0)
    assert w.info().idle_since == pytest.approx(1.6)


def test_a_drained_worker_is_draining_and_finishes_what_it_holds() -> None:
    w = SimWorker("w0", 0.0, 0.0)
    queue = deque([0.0, 0.0])
    w.advance(0.1, queue, 0.2)
    w.stop(0.1)
    assert w.info().state == WorkerState.DRAINING and w.stopped_at is None
    done = w.advance(1.0, queue, 0.2)
    assert len(done) == 1 and w.stopped_at == 0.2 and len(queue) == 1
