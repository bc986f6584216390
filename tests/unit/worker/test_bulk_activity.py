"""The heartbeat of a worker with two loops: BUSY while either holds a batch, READY only when
both are idle, and the receipts of both listed (the fleet releases them if the worker dies)."""

from __future__ import annotations

from pathlib import Path

from imgrec.embedded.dir_store import DirectoryStore
from imgrec.embedded.sqlite_queue import SqliteBroker
from imgrec.ports import WorkerState
from imgrec.worker.bulk_thread import Activity
from imgrec.worker.heartbeat import Heartbeat
from imgrec.worker.lease import Leases


def state(heartbeat: Heartbeat) -> WorkerState:
    return heartbeat.record.state


def test_ready_only_when_both_loops_are_idle(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "objects")
    queue = SqliteBroker(tmp_path / "q.db").open("requests")
    heartbeat = Heartbeat(store, "w-1", min_interval_s=0.0)
    leases = Leases(queue, visibility_s=30, max_hold_s=300)
    activity = Activity(heartbeat, leases, report_receipts=True, processed=lambda: 7)

    activity.took(["bulk|r1", "bulk|r2"])  # the bulk loop takes a batch
    activity.idle()  # the interactive loop finds nothing meanwhile
    assert state(heartbeat) == WorkerState.BUSY
    activity.took(["i1"])  # an interactive request arrives
    assert sorted(heartbeat.record.receipts) == ["bulk|r1", "bulk|r2", "i1"]
    leases.drop(["i1"])
    activity.done()
    activity.idle()
    assert state(heartbeat) == WorkerState.BUSY  # the bulk batch is still in hand
    leases.drop(["bulk|r1", "bulk|r2"])
    activity.done()
    activity.idle()
    assert state(heartbeat) == WorkerState.READY
    assert heartbeat.record.processed == 7


def test_the_bulk_loop_waits_while_the_interactive_loop_holds_a_batch() -> None:
    import threading
    import time

    from imgrec.worker.bulk_thread import InteractiveFirst

    gate = InteractiveFirst(max_wait_s=5.0)
    gate.wait_while_busy()  # idle: no wait
    gate.busy()
    waited: list[float] = []

    def bulk_step() -> None:
        start = time.monotonic()
        gate.wait_while_busy()
        waited.append(time.monotonic() - start)

    thread = threading.Thread(target=bulk_step)
    thread.start()
    time.sleep(0.2)
    assert not waited  # still waiting: the interactive batch is in hand
    gate.idle()
    thread.join(2)
    assert 0.15 < waited[0] < 2.0


def test_a_steady_interactive_load_slows_the_bulk_loop_but_does_not_stop_it() -> None:
    import time

    from imgrec.worker.bulk_thread import InteractiveFirst

    gate = InteractiveFirst(max_wait_s=0.1)
    gate.busy()
    start = time.monotonic()
    gate.wait_while_busy()
    assert 0.08 < time.monotonic() - start < 1.0
