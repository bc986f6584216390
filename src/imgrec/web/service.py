"""What the endpoints do, apart from HTTP: submit an upload, wait for its answer, look a job up.

Accepted means durable: ``submit`` returns only once the image is stored and the request
queued (with ``durability`` power-loss, fsynced). Both backend calls run within the request's
deadline (``deadline.py``); a request given up on is not queued afterwards, and its image is
removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Literal

from .. import keys
from ..errors import ImgrecError, ObjectNotFound
from ..messages import ClassifyRequest, ClassifyResult
from ..ports import Backend
from ..retention import is_expired
from .backlog import Admission
from .deadline import DeadlineCalls
from .errors import ApiError
from .replies import ReplyDispatcher
from .uploads import Upload

log = logging.getLogger(__name__)
JobState = Literal["queued", "done", "failed"]


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

    async def submit(
        self, upload: Upload, *, wait: bool, admission: Admission | None = None
    ) -> tuple[str, asyncio.Future[ClassifyResult] | None]:
        """Store the image and queue its request; with ``wait`` also register for the reply.

        ``admission`` is the request's place in the backlog (``BacklogGate.admit``).
        """
        request_id = keys.new_request_id()
        future = self.dispatcher.expect(request_id) if wait else None
        if not wait:
            self.dispatcher.track(request_id)
        request = ClassifyRequest(
            request_id=request_id,
            key=keys.input_key(request_id),
            reply_to=self.reply_queue,
            sent_at=time.time(),
        )
        try:
            await self.calls.run_abandonable(
                "storing the upload and queueing its request",
                lambda abandoned: self._enqueue(request, upload.data, abandoned),
            )
        except BaseException:
            self.dispatcher.forget(request_id)
            raise
        if admission is not None:
            admission.queued()
        return request_id, future

    def _enqueue(self, request: ClassifyRequest, data: bytes, abandoned: threading.Event) -> None:
        self.backend.store.put(request.key, data)
        if abandoned.is_set():  # the client already got its 503: queue nothing for it
            self._remove_input(request)
            return
        try:
            self.backend.requests.send([request.encode()])
        except ImgrecError:
            # Not queued: the client gets an error and no id, so the image would be an orphan.
            self._remove_input(request)
            raise
        if abandoned.is_set():
            log.info("request %s was queued after its client got a 503; it is classified "
                     "and its result expires with the others", request.request_id)

    def _remove_input(self, request: ClassifyRequest) -> None:
        with contextlib.suppress(ImgrecError):
            self.backend.store.delete(request.key)

    async def wait(self, request_id: str, future: asyncio.Future[ClassifyResult]) -> ClassifyResult:
        """The result, or 504 with the job id to poll once ``sync_timeout_s`` has passed."""
        try:
            return await asyncio.wait_for(future, timeout=self.sync_timeout_s)
        except TimeoutError:
            raise ApiError(
                504, "timeout",
                f"No answer within {self.sync_timeout_s:g} s; the request is still queued. "
                f"Poll /api/v1/jobs/{request_id} for its result.",
                job_id=request_id, poll=f"/api/v1/jobs/{request_id}",
            ) from None
        finally:
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
        return JobStatus(request_id, "done" if result.ok else "failed", result)

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
