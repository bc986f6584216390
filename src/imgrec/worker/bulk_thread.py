"""A worker's second loop for the bulk lane, in a thread the OS runs at a lower priority.

Taking interactive requests first is not enough on its own: a worker in the middle of a bulk
batch makes an interactive request wait for that batch, and bulk work competes with the web
tier and the interactive batches for the cores. So a worker serves the interactive lane on its
main thread and the bulk lane on this thread, which raises its own nice value
(``bulk_nice``, Linux: per thread, no privilege needed to raise it). When only batch items
wait, the bulk thread has the CPU to itself and a batch runs at full speed; the moment an
interactive request arrives, the scheduler runs its thread (and the web tier) first.

The two loops also share the worker's interpreter lock. A low-priority thread that holds it
when the scheduler takes its core away blocks the interactive thread until it runs again: with
the cores busy (a web tier taking in a batch) that was an interactive inference of 100 ms
instead of 8. So the bulk loop also waits, before each step of its batch, while the
interactive loop holds a batch (``InteractiveFirst``), and holds the lock as little as it can
then.

Both loops share the worker's leases, counters and heartbeat; ``Activity`` keeps the
heartbeat's state honest: the worker is BUSY while either loop holds a batch, READY only when
both are idle, and the heartbeat lists the receipts of both.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence

from ..errors import RetryableError
from ..lanes import LanedRequests
from ..ports import Message, WorkerState
from .heartbeat import Heartbeat
from .lease import Leases

log = logging.getLogger(__name__)
_BACKOFF_S = 1.0


class Activity:
    """How many of the worker's loops hold a batch; the heartbeat state follows from it."""

    def __init__(self, heartbeat: Heartbeat, leases: Leases, *, report_receipts: bool,
                 processed: Callable[[], int]) -> None:
        self.heartbeat = heartbeat
        self.leases = leases
        self.report_receipts = report_receipts
        self.processed = processed
        self._busy = 0
        self._lock = threading.Lock()

    def took(self, receipts: Sequence[str]) -> None:
        """A loop took a batch: hold it, and show BUSY with every receipt in hand."""
        with self._lock:
            self.leases.hold(receipts)
            self._busy += 1
            self.heartbeat.beat(WorkerState.BUSY, processed=self.processed(),
                                receipts=list(self.leases.held()) if self.report_receipts
                                else None)

    def done(self) -> None:
        with self._lock:
            self._busy -= 1
            self.heartbeat.beat(WorkerState.BUSY, processed=self.processed())

    def idle(self) -> None:
        """A loop found nothing: READY only if the other one holds nothing either."""
        with self._lock:
            state = WorkerState.READY if self._busy == 0 else WorkerState.BUSY
            self.heartbeat.beat(state, processed=self.processed())


class InteractiveFirst:
    """The interactive loop says when it holds a batch; the bulk loop waits for it between
    steps (at most ``max_wait_s`` a step, so a steady interactive load slows batches down
    rather than stopping them)."""

    def __init__(self, max_wait_s: float = 0.5) -> None:
        self.max_wait_s = max_wait_s
        self._idle = threading.Event()
        self._idle.set()

    def busy(self) -> None:
        self._idle.clear()

    def idle(self) -> None:
        self._idle.set()

    def wait_while_busy(self) -> None:
        self._idle.wait(self.max_wait_s)


class BulkThread:
    """Serves the bulk lane until ``stop`` is set; the batch in hand is always finished."""

    def __init__(self, lanes: LanedRequests, activity: Activity,
                 interactive: InteractiveFirst, *,
                 handle: Callable[[Sequence[Message], Callable[[], None]], bool],
                 batch_size: int,
                 fill_wait_s: float, poll_wait_s: float, visibility_s: float,
                 nice: int) -> None:
        self.lanes = lanes
        self.activity = activity
        self.interactive = interactive
        self.handle = handle
        self.batch_size = batch_size
        self.fill_wait_s = fill_wait_s
        self.poll_wait_s = poll_wait_s
        self.visibility_s = visibility_s
        self.nice = nice
        self._thread: threading.Thread | None = None

    def start(self, stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self._run, args=(stop,), name="bulk-lane",
                                        daemon=True)
        self._thread.start()

    def join(self, timeout_s: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _lower_priority(self) -> None:
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + self.nice)
        except (OSError, AttributeError) as exc:  # not Linux, or not allowed: still correct
            log.info("bulk lane runs at normal priority (%s)", exc)

    def _run(self, stop: threading.Event) -> None:
        self._lower_priority()
        busy = False
        while not stop.is_set():
            try:
                messages = self.lanes.receive_bulk_batch(
                    max_size=self.batch_size, first_wait_s=0.0 if busy else self.poll_wait_s,
                    fill_wait_s=self.fill_wait_s, visibility_s=self.visibility_s)
            except RetryableError as exc:
                log.warning("cannot receive batch items: %s; retrying in %.0f s", exc,
                            _BACKOFF_S)
                stop.wait(_BACKOFF_S)
                continue
            busy = bool(messages)
            if not messages:
                self.activity.idle()
                continue
            self.activity.took([m.receipt for m in messages])
            try:
                if not self.handle(messages, self.interactive.wait_while_busy):
                    stop.wait(_BACKOFF_S)
            finally:
                self.activity.done()
