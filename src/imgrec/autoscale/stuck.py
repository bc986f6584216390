"""Workers to give up on: still starting past the boot deadline, or silent too long (pure).

A worker that never becomes ready (its install failed, its instance never booted) or whose
heartbeat stopped (its instance froze, its network broke) holds a place in the fleet and,
if busy, requests. The controller terminates such workers and replaces them.

Example::

    stuck_workers(workers, now=1000.0, boot_deadline_s=600.0, silent_after_s=60.0)
    # [("i-0abc", "not ready 612 s after launch (boot deadline 600 s)")]
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ports import WorkerInfo, WorkerState

DEFAULT_BOOT_DEADLINE_S = 900.0  # before any boot was measured: EC2 boots take minutes
MIN_BOOT_DEADLINE_S = 60.0
BOOT_DEADLINE_MARGIN = 3.0


def boot_deadline(measured_boot_s: float | None, configured_s: float | None) -> float:
    """The configured deadline, else the measured boot time times a margin (at least 60 s)."""
    if configured_s is not None:
        return configured_s
    if measured_boot_s is None:
        return DEFAULT_BOOT_DEADLINE_S
    return max(MIN_BOOT_DEADLINE_S, BOOT_DEADLINE_MARGIN * measured_boot_s)


def stuck_workers(workers: Sequence[WorkerInfo], now: float, *, boot_deadline_s: float,
                  silent_after_s: float) -> list[tuple[str, str]]:
    """(worker id, why) of every worker past its boot deadline or silent for too long."""
    stuck: list[tuple[str, str]] = []
    for w in workers:
        if w.state == WorkerState.STARTING and now - w.launched_at > boot_deadline_s:
            stuck.append((w.worker_id, f"not ready {now - w.launched_at:.0f} s after launch "
                                       f"(boot deadline {boot_deadline_s:.0f} s)"))
        elif (w.state in (WorkerState.READY, WorkerState.BUSY)
              and now - w.last_seen > silent_after_s):
            stuck.append((w.worker_id, f"no heartbeat for {now - w.last_seen:.0f} s "
                                       f"(limit {silent_after_s:.0f} s)"))
    return stuck
