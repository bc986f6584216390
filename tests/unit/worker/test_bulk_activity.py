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
