"""What the endpoints do, apart from HTTP: submit an upload, wait for its answer, look a job up.

Accepted means durable: ``submit`` returns only once the image is stored and the request
queued (with ``durability`` power-loss, fsynced). Both backend calls run within the request's
deadline (``deadline.py``); a request given up on is not queued afterwards, and its image is
removed.

Jobs may carry options (``job_options.py``): an idempotency key (``idempotency.py``: a repeat
answers with the first job, classified once) and a deadline (it travels in the request message;
a synchronous request's defaults to ``sync_timeout_s``). ``cancel`` ends a queued job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from .. import job_states, keys
from ..errors import ImgrecError, ObjectNotFound
from ..job_states import JobState
from ..messages import ClassifyRequest, ClassifyResult
from ..ports import Backend
from ..retention import is_expired
from .backlog import Admission
from .deadline import DeadlineCalls
from .errors import ApiError
from .idempotency import IdempotencyKeys, IdempotencyRecord, check_same_image, image_digest
from .job_options import JobOptions
from .outcomes import DEADLINE_STATUS
from .replies import ReplyDispatcher
from .uploads import Upload

log = logging.getLogger(__name__)
_POLL_FIRST_S = 0.05  # a repeated synchronous request polls the first one's result
_POLL_MAX_S = 0.5


@dataclass(frozen=True)
class JobStatus:
    request_id: str
    state: JobState
    result: ClassifyResult | None


class ClassifyService:
    """Stores uploads, queues requests and resolves their answers."""

    def __init__(
        self, backend: Backend, dispatcher: ReplyDispatcher, reply_queue: str,
        *, sync_timeout_s: float, calls: DeadlineCalls, retention_s: float,
    ) -> None:
        self.backend = backend
        self.dispatcher = dispatcher
        self.reply_queue = reply_queue
        self.sync_timeout_s = sync_timeout_s
        self.calls = calls
        self.retention_s = retention_s
        self.idempotency = IdempotencyKeys(backend.store, retention_s=retention_s)
        # Called once a request is queued: the autoscaler's wake, when this tier runs one.
        self.on_queued: Callable[[], None] = lambda: None
        self._deadlines: dict[str, float] = {}  # waiting requests' own deadlines
        # Futures of repeated requests (they poll the store): the dispatcher's waiter for the
        # same id belongs to the first request, which must keep it.
        self._replays: weakref.WeakSet[asyncio.Future[ClassifyResult]] = weakref.WeakSet()

    async def submit(
        self, upload: Upload, *, wait: bool, admission: Admission | None = None,
        options: JobOptions | None = None,
    ) -> tuple[str, asyncio.Future[ClassifyResult] | None]:
        """Store the image and queue its request; with ``wait`` also register for the reply.

        ``admission`` is the request's place in the backlog (``BacklogGate.admit``). With an
        idempotency key already used for the same image, no new job is made: the id is the
        first job's and the future (with ``wait``) resolves with its result; for another
        image it is a 409.
        """
        options = options or JobOptions()
        key = options.idempotency_key
        digest = image_digest(upload.data) if key is not None else ""
        if key is not None:
            found = await self.calls.run("looking the idempotency key up",
                                         self.idempotency.find, key)
            if found is not None:
                return self._replay(found, digest, wait)
        request_id = keys.new_request_id()
        now = time.time()
        deadline_s = options.deadline_s
        if deadline_s is None and wait:
            deadline_s = self.sync_timeout_s
        request = ClassifyRequest(
            request_id=request_id,
            key=keys.input_key(request_id),
            reply_to=self.reply_queue,
            sent_at=now,
            deadline=None if deadline_s is None else now + deadline_s,
        )
        future = self.dispatcher.expect(request_id) if wait else None
        if not wait:
            self.dispatcher.track(request_id)
        claim = None if key is None else (key, IdempotencyRecord(request_id, digest, now))
        try:
            winner = await self.calls.run_abandonable(
                "storing the upload and queueing its request",
                lambda abandoned: self._enqueue(request, upload.data, abandoned, claim),
            )
        except BaseException:
            self.dispatcher.forget(request_id)
            raise
        if winner is not None:  # another request with the same key made the job first
            self.dispatcher.forget(request_id)
            return self._replay(winner, digest, wait)
        if admission is not None:
            admission.queued()
        self.on_queued()
        if wait and options.deadline_s is not None:
            self._deadlines[request_id] = now + options.deadline_s
        return request_id, future

    def _replay(
        self, record: IdempotencyRecord, digest: str, wait: bool
    ) -> tuple[str, asyncio.Future[ClassifyResult] | None]:
        check_same_image(record, digest)
        log.info("idempotency key seen again: answering with job %s", record.request_id)
        if not wait:
            return record.request_id, None
        # The first job answers on its own web tier's reply queue: read its stored result.
        future = asyncio.ensure_future(self._poll_result(record.request_id))
        self._replays.add(future)
        return record.request_id, future

    async def _poll_result(self, request_id: str) -> ClassifyResult:
        pause = _POLL_FIRST_S
        while True:
            status = await self.lookup(request_id)
            if status.result is not None:
                return status.result
            await asyncio.sleep(pause)
            pause = min(pause * 2, _POLL_MAX_S)

    def _enqueue(
        self, request: ClassifyRequest, data: bytes, abandoned: threading.Event,
        claim: tuple[str, IdempotencyRecord] | None = None,
    ) -> IdempotencyRecord | None:
        """Store, claim the idempotency key (if any), queue; the record that won if not ours."""
        self.backend.store.put(request.key, data)
        if abandoned.is_set():  # the client already got its 503: queue nothing for it
            self._remove_input(request)
            return None
        if claim is not None:
            winner = self.idempotency.claim(*claim)
            if winner is not None:
                self._remove_input(request)
                return winner
        try:
            self.backend.requests.send([request.encode()])
        except ImgrecError:
            # Not queued: the client gets an error and no id, so the image would be an orphan.
            self._remove_input(request)
            if claim is not None:
                self.idempotency.release(claim[0])
            raise
        if abandoned.is_set():
            log.info("request %s was queued after its client got a 503; it is classified "
                     "and its result expires with the others", request.request_id)
        return None

    def _remove_input(self, request: ClassifyRequest) -> None:
        with contextlib.suppress(ImgrecError):
            self.backend.store.delete(request.key)

    async def wait(self, request_id: str, future: asyncio.Future[ClassifyResult]) -> ClassifyResult:
        """The result; or, with the job id to poll, 504 once ``sync_timeout_s`` has passed, 408
        once the request's own shorter deadline has."""
        own = self._deadlines.pop(request_id, None)
        timeout_s = self.sync_timeout_s
        if own is not None:
            timeout_s = max(0.0, min(timeout_s, own - time.time()))
        try:
            return await asyncio.wait_for(future, timeout=timeout_s)
        except TimeoutError:
            own_binds = timeout_s < self.sync_timeout_s
            raise ApiError(
                DEADLINE_STATUS if own_binds else 504,
                "deadline_exceeded" if own_binds else "timeout",
                f"No answer within {timeout_s:g} s, the request's "
                f"{'deadline (X-Deadline-S)' if own_binds else 'wait limit'}. A worker that "
                "takes it from now on answers deadline_exceeded without classifying it; one "
                f"that already took it finishes. Poll /api/v1/jobs/{request_id} for the outcome.",
                job_id=request_id, poll=f"/api/v1/jobs/{request_id}",
            ) from None
        finally:
            if future in self._replays:
                future.cancel()  # stop polling
            else:
                self.dispatcher.forget(request_id)

    async def lookup(self, request_id: str) -> JobStatus:
        if not keys.is_request_id(request_id):
            raise ApiError(404, "job_not_found", f"No job with id {request_id!r}.")
        return await self.calls.run("looking the job up", self._lookup, request_id)

    def _lookup(self, request_id: str) -> JobStatus:
        store = self.backend.store
        try:
            result = ClassifyResult.from_json(store.get(keys.result_key(request_id)))
        except ObjectNotFound:
            if store.exists(keys.input_key(request_id)):
                return JobStatus(request_id, "queued", None)
            if is_expired(request_id, self.retention_s, time.time()):
                raise self._expired(request_id) from None
            raise ApiError(404, "job_not_found", f"No job with id {request_id!r}.") from None
        return JobStatus(request_id, job_states.state_of(result), result)

    async def cancel(self, request_id: str) -> JobStatus:
        """Cancel a queued job (``cancelled``, never classified); 409 for one that is finished.

        The cancel result is stored with ``put_if_absent``, then the input is deleted: a worker
        that has not fetched the image finds it gone and answers with the stored cancel; one
        that classified meanwhile loses the race for the result (``job_states.py``). Cancelling
        a cancelled job again answers the same.
        """
        status = await self.lookup(request_id)
        if status.state == "queued":
            status = await self.calls.run("cancelling the job", self._cancel, request_id)
            if status.state == "cancelled" and status.result is not None:
                # A synchronous request waiting here answers now; on another web tier it
                # answers when a worker meets the cancel (at once: its image is gone).
                self.dispatcher.answer_locally(status.result)
        if status.state != "cancelled":
            raise ApiError(
                409, "job_finished",
                f"Job {request_id} is already {status.state}; only a queued job can be "
                "cancelled.", id=request_id, job_status=status.state)
        return status

    def _cancel(self, request_id: str) -> JobStatus:
        store = self.backend.store
        cancelled = job_states.cancelled_result(request_id)
        if not store.put_if_absent(keys.result_key(request_id), cancelled.to_json()):
            return self._lookup(request_id)  # a worker stored its result first
        with contextlib.suppress(ImgrecError):  # the input expires with retention anyway
            store.delete(keys.input_key(request_id))
        return JobStatus(request_id, "cancelled", cancelled)

    def _expired(self, request_id: str) -> ApiError:
        made = keys.request_id_time(request_id) or 0.0
        days = self.retention_s / 86400
        return ApiError(
            410, "job_expired",
            f"Job {request_id} was submitted more than {days:g} days ago; its image and result "
            "were deleted after the retention period (IMGREC_RETENTION_DAYS). Submit the image "
            "again for a new answer.",
            id=request_id, submitted_at=round(made, 3),
            expired_at=round(made + self.retention_s, 3),
        )
