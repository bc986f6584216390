"""The app tier: receive a batch of requests, classify it in one ONNX run, store and answer.

The steps of one batch are in ``batch.py``. This loop receives batches, keeps the requests in
hand invisible while it works (``lease.py``), keeps its heartbeat fresh and survives whatever a
batch throws: a retryable failure (the store or queue unreachable) leaves the batch for
redelivery and backs off; any other exception is logged with its traceback and the batch is
left for redelivery too, where its requests are handled one at a time, so one bad request
reaches the dead-letter queue on its own and never stops the worker.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence

from ..config import Settings
from ..errors import RetryableError
from ..lanes import LanedRequests
from ..model.classifier import Classifier
from ..ports import Backend, Message, WorkerState
from .batch import BatchRun, BatchTools, WorkerCounters
from .bulk_thread import Activity, BulkThread, InteractiveFirst
from .heartbeat import Heartbeat
from .lease import Leases
from .reply_queues import ReplyQueues

__all__ = ["Worker", "WorkerCounters"]

log = logging.getLogger(__name__)
_BACKOFF_S = 1.0


class Worker:
    """One app-tier worker process's loop.

    With ``report_receipts`` (a worker supervised by the local process fleet) the heartbeat
    lists the receipts in hand, so the fleet can release them the moment the process dies.
    """

    def __init__(
        self,
        backend: Backend,
        classifier: Classifier,
        settings: Settings,
        *,
        worker_id: str | None = None,
        report_receipts: bool = False,
        replies: ReplyQueues | None = None,
    ) -> None:
        self.backend = backend
        self.classifier = classifier
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}-{threading.get_native_id()}"
        self.report_receipts = report_receipts
        self.counters = WorkerCounters()
        self.heartbeat = Heartbeat(backend.store, self.worker_id, interval_s=settings.heartbeat_s)
        # Both lanes: interactive first; receipts say which lane to delete or extend them on.
        self.lanes = LanedRequests(backend.requests, backend.bulk)
        self.leases = Leases(
            self.lanes, visibility_s=settings.visibility_timeout_s,
            max_hold_s=settings.max_processing_s, on_tick=self.heartbeat.beat,
        )
        self.activity = Activity(self.heartbeat, self.leases, report_receipts=report_receipts,
                                 processed=lambda: self.counters.received)
        self.bulk_thread: BulkThread | None = None
        self.interactive_first = InteractiveFirst()
        self.tools = BatchTools(
            store=backend.store, requests=self.lanes,
            replies=replies or ReplyQueues(backend.broker), classifier=classifier,
            max_image_pixels=settings.max_image_pixels, counters=self.counters,
        )

    def run(self, stop: threading.Event, *, until_empty: bool = False) -> WorkerCounters:
        """Serve until ``stop`` is set (or, with ``until_empty``, until a receive finds nothing).

        A stop request takes effect between batches: the batch in hand is always finished.
        """
        self.heartbeat.beat(WorkerState.READY)
        self.leases.start()
        # The bulk lane gets a loop of its own at a lower CPU priority (bulk_thread.py); a
        # worker that drains the queue and returns (until_empty) serves both lanes in turn.
        if not until_empty and self.backend.bulk is not None and self.settings.bulk_nice > 0:
            self.bulk_thread = BulkThread(
                self.lanes, self.activity, self.interactive_first, handle=self.handle_batch,
                batch_size=min(self.settings.batch_size, self.settings.bulk_batch_size),
                fill_wait_s=self.settings.batch_wait_ms / 1000,
                poll_wait_s=self.settings.poll_wait_s,
                visibility_s=self.settings.visibility_timeout_s, nice=self.settings.bulk_nice)
            self.bulk_thread.start(stop)
        try:
            self._serve(stop, until_empty)
        finally:
            if self.bulk_thread is not None:
                stop.set()
                self.bulk_thread.join(self.settings.max_processing_s)
            self.leases.stop()
        self.heartbeat.beat(WorkerState.STOPPED, processed=self.counters.received, receipts=[])
        return self.counters

    def _serve(self, stop: threading.Event, until_empty: bool) -> None:
        busy = False
        while not stop.is_set():
            # Right after a batch, look without waiting: an empty queue then shows READY at
            # once, so the autoscaler sees an idle worker as soon as the work runs out.
            wait_s = 0.0 if (until_empty or busy) else self.settings.poll_wait_s
            try:
                messages = self.receive_batch(wait_s)
            except RetryableError as exc:
                log.warning("cannot receive requests: %s; retrying in %.0f s", exc, _BACKOFF_S)
                stop.wait(_BACKOFF_S)
                continue
            busy = bool(messages)
            if not messages:
                if self.bulk_thread is not None:
                    self.activity.idle()
                else:
                    self.heartbeat.beat(WorkerState.READY, processed=self.counters.received)
                if until_empty:
                    break
                continue
            if self.bulk_thread is not None:
                self.interactive_first.busy()
            try:
                if not self.handle_batch(messages):
                    stop.wait(_BACKOFF_S)
            finally:
                if self.bulk_thread is not None:
                    self.interactive_first.idle()
                    self.activity.done()
            # Stay BUSY until a receive comes back empty: between two batches of a steady load
            # the worker is not idle, and must not look drainable.
            self.heartbeat.beat(WorkerState.BUSY, processed=self.counters.received)

    def receive_batch(self, first_wait_s: float) -> list[Message]:
        """Receive one batch and take it in hand (leases; receipts in the heartbeat)."""
        if self.bulk_thread is not None:
            messages = self.lanes.receive_interactive_batch(
                max_size=self.settings.batch_size, first_wait_s=first_wait_s,
                fill_wait_s=self.settings.batch_wait_ms / 1000,
                visibility_s=self.settings.visibility_timeout_s)
            if messages:
                self.activity.took([m.receipt for m in messages])
            return messages
        messages = self.lanes.receive_batch(
            max_size=self.settings.batch_size,
            bulk_max_size=min(self.settings.batch_size, self.settings.bulk_batch_size),
            first_wait_s=first_wait_s,
            fill_wait_s=self.settings.batch_wait_ms / 1000,
            visibility_s=self.settings.visibility_timeout_s,
        )
        if messages:
            receipts = [m.receipt for m in messages]
            self.leases.hold(receipts)
            self.heartbeat.beat(WorkerState.BUSY,
                                receipts=receipts if self.report_receipts else None)
        return messages

    def handle_batch(self, messages: Sequence[Message],
                     before_step: Callable[[], None] | None = None) -> bool:
        """Handle a received batch; False if (some of) it was left for redelivery.

        ``before_step`` runs before each step of the batch (the bulk loop waits there while
        an interactive batch is in hand)."""
        try:
            self.handle_isolating_redeliveries(messages, before_step)
        except RetryableError as exc:
            # Not deleted: the requests come back after the visibility timeout.
            log.warning("batch of %d left for redelivery: %s", len(messages), exc)
            return False
        except Exception:  # noqa: BLE001 - one bad batch must not stop the worker
            log.exception("batch of %d failed; left for redelivery, where its requests are "
                          "handled one at a time", len(messages))
            return False
        finally:
            self.leases.drop([m.receipt for m in messages])
        return True

    def handle_isolating_redeliveries(self, messages: Sequence[Message],
                                      before_step: Callable[[], None] | None = None) -> None:
        """Handle the fresh requests as one batch, then each redelivered request on its own.

        A request that kills its worker (out of memory, a decoder crash) or makes its batch
        fail takes its batch-mates down with it, and they all come back with a higher receive
        count. Handling those one at a time, the least-received first (the culprit tends to
        have been received the most), means that in general only the culprit goes on to the
        dead-letter queue.
        """
        fresh = [m for m in messages if m.receive_count <= 1]
        if fresh:
            self.handle(fresh, before_step)
        suspects = [m for m in messages if m.receive_count > 1]
        for message in sorted(suspects, key=lambda m: m.receive_count):
            log.info("request message %s is back (received %d times): handled on its own",
                     message.message_id, message.receive_count)
            self.handle([message], before_step)

    def handle(self, messages: Sequence[Message],
               before_step: Callable[[], None] | None = None) -> None:
        """Classify, store, answer and delete one batch of request messages."""
        run = self.start_batch(messages)
        if before_step is None:
            run.run()
            return
        while not run.finished:
            before_step()
            run.advance()

    def start_batch(self, messages: Sequence[Message]) -> BatchRun:
        """The steps of one batch, to run one at a time (``BatchRun.advance``) or all."""
        return BatchRun(self.tools, messages)
