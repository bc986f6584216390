"""Which workers the controller gives up on (pure)."""

from __future__ import annotations

import pytest

from imgrec.autoscale.stuck import boot_deadline, stuck_workers
from imgrec.ports import WorkerInfo, WorkerState


def _worker(state: WorkerState, launched_at: float, last_seen: float) -> WorkerInfo:
    return WorkerInfo(f"w-{state.value}", state, launched_at=launched_at, last_seen=last_seen)


@pytest.mark.parametrize(
    ("worker", "stuck"),
    [(_worker(WorkerState.STARTING, 0, 0), True),      # 100 s booting, deadline 60 s
     (_worker(WorkerState.STARTING, 50, 50), False),
     (_worker(WorkerState.READY, 0, 95), False),
     (_worker(WorkerState.BUSY, 0, 10), True),         # silent for 90 s, limit 30 s
     (_worker(WorkerState.DRAINING, 0, 0), False)],    # leaving anyway
)
def test_stuck_workers(worker: WorkerInfo, stuck: bool) -> None:
    found = stuck_workers([worker], 100.0, boot_deadline_s=60.0, silent_after_s=30.0)
    assert bool(found) is stuck


@pytest.mark.parametrize(("measured", "configured", "want"),
                         [(None, None, 900.0), (0.3, None, 60.0), (120.0, None, 360.0),
                          (120.0, 45.0, 45.0)])
def test_boot_deadline(measured: float | None, configured: float | None, want: float) -> None:
    assert boot_deadline(measured, configured) == want
