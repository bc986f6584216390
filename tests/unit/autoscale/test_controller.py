"""The controller on in-memory stand-ins of the Queue and Fleet ports, with the clock passed in.

The stand-ins are ports, not imgrec components (the contract suites run the real adapters):
a queue whose depth the test sets and a fleet that records what it was told.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from imgrec.autoscale.controller import Controller
from imgrec.autoscale.policy import PolicySettings
from imgrec.ports import FleetHealth, Message, QueueDepth, WorkerInfo, WorkerState


@dataclass
class DepthOnlyQueue:
    """A Queue whose depth the test sets; the controller only ever asks for the depth."""

    name: str = "requests"
    visible: int = 0

    def send(self, bodies: Sequence[str]) -> list[str]:
        raise AssertionError("the controller never sends")

    def receive(self, max_messages: int = 1, wait_s: float = 0.0,
                visibility_s: float | None = None) -> list[Message]:
        raise AssertionError("the controller never receives")

    def delete(self, receipts: Sequence[str]) -> None:
        raise AssertionError("the controller never deletes")

    def change_visibility(self, receipt: str, visibility_s: float) -> None:
        raise AssertionError("the controller never changes visibility")

    def depth(self) -> QueueDepth:
        return QueueDepth(self.visible, 0)


@dataclass
class RecordingFleet:
    """A Fleet that keeps its workers in a dict and records every call."""

    clock: list[float]
    workers: dict[str, WorkerInfo] = field(default_factory=dict)
    launched: list[str] = field(default_factory=list)
    drained: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    crashed: int = 0

    def list(self) -> list[WorkerInfo]:
        return list(self.workers.values())

    def launch(self, count: int) -> builtins.list[str]:
        ids = [f"w{len(self.launched) + i}" for i in range(count)]
        for worker_id in ids:
            self.workers[worker_id] = WorkerInfo(worker_id, WorkerState.STARTING,
                                                 launched_at=self.clock[0],
                                                 last_seen=self.clock[0])
        self.launched.extend(ids)
        return ids

    def drain(self, worker_ids: Sequence[str]) -> None:
        self.drained.extend(worker_ids)

    def terminate(self, worker_ids: Sequence[str]) -> None:
        self.terminated.extend(worker_ids)
        for worker_id in worker_ids:
            self.workers.pop(worker_id, None)

    def health(self) -> FleetHealth:
        return FleetHealth(crashed=self.crashed)

    def close(self) -> None:
        pass


def _controller(**kwargs: object) -> tuple[Controller, DepthOnlyQueue, RecordingFleet,
                                           list[float]]:
    clock = [1000.0]
    queue, fleet = DepthOnlyQueue(), RecordingFleet(clock)
    controller = Controller(queue, fleet, PolicySettings(max_workers=3),
                            clock=lambda: clock[0], **kwargs)  # type: ignore[arg-type]
    return controller, queue, fleet, clock


def test_a_backlog_launches_and_the_decision_records_its_inputs() -> None:
    controller, queue, fleet, _clock = _controller()
    queue.visible = 25
    decision = controller.tick()
    assert decision.launch == 3 and fleet.launched == ["w0", "w1", "w2"]
    [record] = controller.recent_decisions()
    assert record.launch == 3 and record.inputs is not None
    assert record.inputs["backlog"] == 25 and record.inputs["mode"] == "cold"
    assert controller.tick().launch == 0  # starting workers count as capacity


def test_crashes_hold_launches_with_backoff() -> None:
    controller, queue, fleet, clock = _controller()
    queue.visible = 5
    controller.tick()
    fleet.workers.clear()
    fleet.crashed = 1  # the worker died before it was ready
    held = controller.tick()
    assert held.launch == 0 and "held" in held.reason and held.inputs is not None
    clock[0] += 1.1
    assert controller.tick().launch == 1  # after the 1 s hold


def test_a_worker_past_its_boot_deadline_is_terminated_and_replaced() -> None:
    controller, queue, fleet, clock = _controller(boot_deadline_s=60.0)
    queue.visible = 5
    controller.tick()
    clock[0] += 61
    controller.tick()
    assert fleet.terminated == ["w0"]
    assert any("not ready 61 s after launch" in p for p in controller.problems())
    clock[0] += 1.1  # the replacement waits out the backoff a failed boot starts
    controller.tick()
    assert fleet.launched[-1] == "w1"


def test_a_silent_worker_is_terminated() -> None:
    controller, _queue, fleet, clock = _controller(silent_after_s=30.0)
    fleet.workers["w9"] = WorkerInfo("w9", WorkerState.BUSY, launched_at=900.0,
                                     last_seen=clock[0] - 31)
    controller.tick()
    assert fleet.terminated == ["w9"]
    assert any("no heartbeat for 31 s" in p for p in controller.problems())


def test_a_request_for_an_empty_fleet_wakes_the_controller_before_its_next_tick() -> None:
    controller, queue, fleet, _clock = _controller(tick_s=3600.0)
    controller.start()
    try:
        deadline = time.monotonic() + 10
        while controller.ticks < 1 and time.monotonic() < deadline:  # the first tick: empty
            time.sleep(0.01)
        queue.visible = 1
        controller.wake()  # what the web tier calls once it has queued a request
        while not fleet.launched and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fleet.launched == ["w0"], "the wake did not bring the next tick forward"
        ticks = controller.ticks
        controller.wake()  # a worker is there: requests no longer bring ticks forward
        time.sleep(0.2)
        assert controller.ticks == ticks
    finally:
        controller.stop()
