"""The app tier: take a batch of requests, classify it in one ONNX run, store and answer.

Delivery is at least once. A request is deleted only after its result is stored and its reply
sent; a redelivered request reuses the stored result, so the answer is the same and the web
tier (which resolves each request once) shows no second one. Images that cannot be decoded get
an error result at once, never a retry loop.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .. import keys
from ..config import Settings
from ..errors import ImageError, ImgrecError, ObjectNotFound, QueueNotFound, RetryableError
from ..messages import ClassifyRequest, ClassifyResult, MessageError, Reply, TopPrediction
from ..model.classifier import Classification, Classifier
from ..model.preprocess import Float32Array
from ..ports import Backend, Message, Queue, WorkerState
from .batching import apply_batch, collect_batch
from .heartbeat import Heartbeat

log = logging.getLogger(__name__)
_BACKOFF_S = 1.0


@dataclass
class WorkerCounters:
    """What a worker has done; ``run(until_empty=True)`` returns it to tests and benchmarks."""

    batches: int = 0
    received: int = 0
    classified: int = 0
    failed: int = 0
    reused: int = 0
    malformed: int = 0
    batch_sizes: list[int] = field(default_factory=list)


@dataclass
class _Job:
    message: Message
    request: ClassifyRequest
    received_at: float
    result: ClassifyResult | None = None


class Worker:
    """One app-tier worker process's loop."""

    def __init__(
        self,
        backend: Backend,
        classifier: Classifier,
        settings: Settings,
        *,
        worker_id: str | None = None,
    ) -> None:
        self.backend = backend
        self.classifier = classifier
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}-{threading.get_native_id()}"
        self.counters = WorkerCounters()
        self.heartbeat = Heartbeat(backend.store, self.worker_id, interval_s=settings.heartbeat_s)
        self._reply_queues: dict[str, Queue | None] = {}

    def run(self, stop: threading.Event, *, until_empty: bool = False) -> WorkerCounters:
        """Serve until ``stop`` is set (or, with ``until_empty``, until a receive finds nothing).

        A stop request takes effect between batches: the batch in hand is always finished.
        """
        self.heartbeat.beat(WorkerState.READY)
        busy = False
        while not stop.is_set():
            # Right after a batch, look without waiting: an empty queue then shows READY at
            # once, so the autoscaler sees an idle worker as soon as the work runs out.
            wait_s = 0.0 if (until_empty or busy) else self.settings.poll_wait_s
            try:
                messages = self._receive(wait_s)
            except RetryableError as exc:
                log.warning("cannot receive requests: %s; retrying in %.0f s", exc, _BACKOFF_S)
                stop.wait(_BACKOFF_S)
                continue
            busy = bool(messages)
            if not messages:
                self.heartbeat.beat(WorkerState.READY, processed=self.counters.received)
                if until_empty:
                    break
                continue
            self.heartbeat.beat(WorkerState.BUSY)
            try:
                self.handle_isolating_redeliveries(messages)
            except RetryableError as exc:
                # Not deleted: the requests come back after the visibility timeout.
                log.warning("batch of %d left for redelivery: %s", len(messages), exc)
                stop.wait(_BACKOFF_S)
            # Stay BUSY until a receive comes back empty: between two batches of a steady load
            # the worker is not idle, and must not look drainable.
            self.heartbeat.beat(WorkerState.BUSY, processed=self.counters.received)
        self.heartbeat.beat(WorkerState.STOPPED, processed=self.counters.received)
        return self.counters

    def _receive(self, first_wait_s: float) -> list[Message]:
        visibility = self.settings.visibility_timeout_s
        requests = self.backend.requests
        return collect_batch(
            lambda n, wait: requests.receive(n, wait_s=wait, visibility_s=visibility),
            max_size=self.settings.batch_size,
            first_wait_s=first_wait_s,
            fill_wait_s=self.settings.batch_wait_ms / 1000,
        )

    def handle_isolating_redeliveries(self, messages: Sequence[Message]) -> None:
        """Handle the fresh requests as one batch, then each redelivered request on its own.

        A request that kills its worker (out of memory, a decoder crash) takes its batch-mates
        down with it, and they all come back with a higher receive count. Classifying those
        one at a time, the least-received first (the culprit tends to have been received the
        most), means that in general only the culprit goes on to the dead-letter queue.
        """
        fresh = [m for m in messages if m.receive_count <= 1]
        if fresh:
            self.handle(fresh)
        suspects = [m for m in messages if m.receive_count > 1]
        for message in sorted(suspects, key=lambda m: m.receive_count):
            self.handle([message])

    def handle(self, messages: Sequence[Message]) -> None:
        """Classify, store, answer and delete one batch of request messages."""
        now = time.time()
        self.counters.batches += 1
        self.counters.received += len(messages)
        self.counters.batch_sizes.append(len(messages))
        jobs: list[_Job] = []
        malformed: list[str] = []
        for msg in messages:
            try:
                jobs.append(_Job(msg, ClassifyRequest.decode(msg.body), now))
            except MessageError as exc:
                log.error("dropping malformed request %s: %s", msg.message_id, exc)
                malformed.append(msg.receipt)
        self.counters.malformed += len(malformed)

        fresh = [job for job in jobs if not self._reuse_stored_result(job)]
        self._classify(fresh)
        for job in fresh:
            assert job.result is not None
            self.backend.store.put(keys.result_key(job.request.request_id), job.result.to_json())
        self._send_replies(jobs)
        self.backend.requests.delete([job.message.receipt for job in jobs] + malformed)

    def _reuse_stored_result(self, job: _Job) -> bool:
        if job.message.receive_count <= 1:
            return False
        try:
            raw = self.backend.store.get(keys.result_key(job.request.request_id))
        except ObjectNotFound:
            return False
        try:
            job.result = ClassifyResult.from_json(raw)
        except MessageError:
            return False
        self.counters.reused += 1
        return True

    def _classify(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        model = self.classifier.spec.name
        started = time.perf_counter()
        images: list[bytes] = []
        found: list[_Job] = []
        for job in jobs:
            try:
                images.append(self.backend.store.get(job.request.key))
                found.append(job)
            except ObjectNotFound:
                job.result = ClassifyResult.failure(
                    job.request.request_id, "input_missing", "the uploaded image is gone", model
                )
        prepared = self.classifier.prepare(images, max_pixels=self.settings.max_image_pixels)
        decode_ms = (time.perf_counter() - started) * 1000
        infer_started = time.perf_counter()
        outcomes: list[Classification | ImageError | Exception] = apply_batch(
            prepared, self.classifier.classify_prepared, _failure_outcome
        )
        infer_ms = (time.perf_counter() - infer_started) * 1000
        per_item_decode = decode_ms / len(jobs)
        for job, outcome in zip(found, outcomes, strict=True):
            timings = {
                "queue_ms": round(max(0.0, job.received_at - job.request.sent_at) * 1000, 2),
                "decode_ms": round(per_item_decode, 2),
                "inference_ms": round(infer_ms, 2),
                "batch_size": float(len(jobs)),
            }
            job.result = _to_result(job.request.request_id, outcome, model, timings)
        for job in jobs:
            assert job.result is not None
            if job.result.ok:
                self.counters.classified += 1
            else:
                self.counters.failed += 1

    def _send_replies(self, jobs: Sequence[_Job]) -> None:
        by_queue: dict[str, list[str]] = {}
        for job in jobs:
            if job.request.reply_to and job.result is not None:
                body = Reply(job.request.request_id, job.result).encode()
                by_queue.setdefault(job.request.reply_to, []).append(body)
        for name, bodies in by_queue.items():
            queue = self._reply_queue(name)
            if queue is None:
                continue
            try:
                queue.send(bodies)
            except QueueNotFound:
                log.info("reply queue %s is gone; results stay in the store", name)
                self._reply_queues[name] = None

    def _reply_queue(self, name: str) -> Queue | None:
        if name not in self._reply_queues:
            try:
                self._reply_queues[name] = self.backend.broker.open(name, create=False)
            except QueueNotFound:
                log.info("reply queue %s is gone; results stay in the store", name)
                self._reply_queues[name] = None
        return self._reply_queues[name]


def _failure_outcome(
    item: Float32Array | ImageError, exc: Exception
) -> Classification | ImageError | Exception:
    # An image that could not be decoded keeps its own error when the batch run fails.
    return item if isinstance(item, ImageError) else exc


def _to_result(
    request_id: str, outcome: Classification | Exception, model: str, timings: dict[str, float]
) -> ClassifyResult:
    if isinstance(outcome, ImageError):
        return ClassifyResult.failure(request_id, outcome.code, outcome.message, model)
    if isinstance(outcome, Exception):
        log.error("classification failed for %s: %s", request_id, outcome)
        code = "internal_error" if not isinstance(outcome, ImgrecError) else "model_error"
        return ClassifyResult.failure(request_id, code, f"classification failed: {outcome}", model)
    top5 = tuple(TopPrediction(p.label, p.class_index, p.probability) for p in outcome.top5)
    return ClassifyResult(request_id=request_id, ok=True, model=model, top5=top5,
                          timings_ms=timings)
