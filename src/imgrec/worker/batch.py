"""One batch of request messages through its steps: parse, classify, store, reply, delete.

Delivery is at least once. A worker that dies between two steps leaves its messages undeleted;
they come back and the next worker starts again from the first step, where a redelivered
request reuses its stored result (same answer, no second inference). One bad request never
fails the batch: an image that cannot be decoded, or an input that is gone (S3 answers 403
instead of 404 for a missing key when the reader lacks ``s3:ListBucket``), gets an error result
of its own at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .. import job_states, keys
from ..errors import ImageError, ImgrecError, ObjectNotFound, PermanentError
from ..messages import ClassifyRequest, ClassifyResult, MessageError, Reply, TopPrediction
from ..model.classifier import Classification, Classifier
from ..model.preprocess import Float32Array
from ..ports import Message, ObjectStore, Queue
from .batching import apply_batch
from .reply_queues import ReplyQueues

log = logging.getLogger(__name__)


@dataclass
class WorkerCounters:
    """What a worker has done; ``run(until_empty=True)`` returns it to tests and benchmarks."""

    batches: int = 0
    received: int = 0
    classified: int = 0
    failed: int = 0
    reused: int = 0
    malformed: int = 0
    deadline_exceeded: int = 0  # answered without inference: their deadline had passed
    superseded: int = 0  # a result was stored first (a cancel): the worker's own was dropped
    replies_undelivered: int = 0
    batch_sizes: list[int] = field(default_factory=list)


@dataclass
class BatchTools:
    """What the steps of a batch use: the worker's store, queues, model and counters."""

    store: ObjectStore
    requests: Queue
    replies: ReplyQueues
    classifier: Classifier
    max_image_pixels: int
    counters: WorkerCounters


@dataclass
class _Job:
    message: Message
    request: ClassifyRequest
    received_at: float
    result: ClassifyResult | None = None
    reused: bool = False


class BatchRun:
    """The steps of one batch, run in order by ``advance`` (one step a call) or ``run``.

    Example::

        BatchRun(tools, messages).run()
    """

    STEPS = ("parse", "classify", "store", "reply", "delete")

    def __init__(self, tools: BatchTools, messages: Sequence[Message]) -> None:
        self.tools = tools
        self.messages = list(messages)
        self.jobs: list[_Job] = []
        self.malformed: list[str] = []
        self.done_steps = 0
        self._steps: tuple[Callable[[], None], ...] = (
            self._parse, self._classify, self._store, self._reply, self._delete,
        )

    @property
    def finished(self) -> bool:
        return self.done_steps == len(self._steps)

    @property
    def next_step(self) -> str | None:
        return None if self.finished else self.STEPS[self.done_steps]

    def advance(self) -> bool:
        """Run the next step; False once every step has run."""
        if self.finished:
            return False
        self._steps[self.done_steps]()
        self.done_steps += 1
        return True

    def run(self) -> None:
        while self.advance():
            pass

    # -- the steps ---------------------------------------------------------------------

    def _parse(self) -> None:
        counters = self.tools.counters
        now = time.time()
        counters.batches += 1
        counters.received += len(self.messages)
        counters.batch_sizes.append(len(self.messages))
        for msg in self.messages:
            try:
                job = _Job(msg, ClassifyRequest.decode(msg.body), now)
            except MessageError as exc:
                log.error("dropping malformed request %s: %s", msg.message_id, exc)
                self.malformed.append(msg.receipt)
                continue
            self._reuse_stored_result(job)
            if job.result is None:
                self._check_deadline(job)
            self.jobs.append(job)
        counters.malformed += len(self.malformed)

    def _reuse_stored_result(self, job: _Job) -> None:
        if job.message.receive_count <= 1:
            return
        try:
            raw = self.tools.store.get(keys.result_key(job.request.request_id))
        except ObjectNotFound:
            return
        except PermanentError as exc:  # a missing key may read as "access denied" on S3
            log.debug("no readable stored result for %s: %s", job.request.request_id, exc)
            return
        try:
            job.result = ClassifyResult.from_json(raw)
        except MessageError:
            return
        job.reused = True
        self.tools.counters.reused += 1

    def _check_deadline(self, job: _Job) -> None:
        """A request past its deadline is answered at once, its image never fetched."""
        deadline = job.request.deadline
        if deadline is not None and job.received_at > deadline:
            job.result = job_states.deadline_result(
                job.request.request_id, job.received_at - deadline,
                self.tools.classifier.spec.name)
            self.tools.counters.deadline_exceeded += 1

    def _classify(self) -> None:
        jobs = [job for job in self.jobs if job.result is None]
        if not jobs:
            return
        tools = self.tools
        model = tools.classifier.spec.name
        started = time.perf_counter()
        images: list[bytes] = []
        found: list[_Job] = []
        for job in jobs:
            image = self._fetch_input(job, model)
            if image is not None:
                images.append(image)
                found.append(job)
        prepared = tools.classifier.prepare(images, max_pixels=tools.max_image_pixels)
        decode_ms = (time.perf_counter() - started) * 1000
        infer_started = time.perf_counter()
        outcomes: list[Classification | ImageError | Exception] = apply_batch(
            prepared, tools.classifier.classify_prepared, _failure_outcome
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
                tools.counters.classified += 1
            else:
                tools.counters.failed += 1

    def _fetch_input(self, job: _Job, model: str) -> bytes | None:
        """The uploaded image, or None with an error result when it is gone or unreadable."""
        try:
            return self.tools.store.get(job.request.key)
        except ObjectNotFound:
            detail = "the uploaded image is gone (expired or deleted); upload it again"
        except PermanentError as exc:
            # S3 answers 403 AccessDenied, not 404, for a missing key without s3:ListBucket.
            log.warning("input of %s not readable: %s", job.request.request_id, exc)
            detail = "the uploaded image is gone or cannot be read; upload it again"
        job.result = ClassifyResult.failure(job.request.request_id, "input_missing", detail, model)
        return None

    def _store(self) -> None:
        # The first result stored wins (job_states.py): if one is there already (a cancel that
        # came first), that one is the answer, and this worker's is dropped.
        store = self.tools.store
        jobs = [job for job in self.jobs if not job.reused]
        items = []
        for job in jobs:
            assert job.result is not None
            items.append((keys.result_key(job.request.request_id), job.result.to_json()))
        stored = store.put_many_if_absent(items)  # a directory: one fsync for the batch
        for job, (key, _), was_stored in zip(jobs, items, stored, strict=True):
            if not was_stored:
                self._take_stored(job, key)

    def _take_stored(self, job: _Job, key: str) -> None:
        try:
            job.result = ClassifyResult.from_json(self.tools.store.get(key))
        except (ObjectNotFound, MessageError) as exc:  # deleted meanwhile (retention): keep ours
            log.warning("stored result of %s vanished (%s); storing this one", key, exc)
            assert job.result is not None
            self.tools.store.put(key, job.result.to_json())
            return
        self.tools.counters.superseded += 1

    def _reply(self) -> None:
        by_queue: dict[str, list[str]] = {}
        for job in self.jobs:
            if job.request.reply_to and job.result is not None:
                body = Reply(job.request.request_id, job.result).encode()
                by_queue.setdefault(job.request.reply_to, []).append(body)
        for name, bodies in by_queue.items():
            if not self.tools.replies.send(name, bodies):
                self.tools.counters.replies_undelivered += len(bodies)

    def _delete(self) -> None:
        self.tools.requests.delete([job.message.receipt for job in self.jobs] + self.malformed)

    @property
    def receipts(self) -> list[str]:
        return [m.receipt for m in self.messages]


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
