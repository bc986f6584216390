"""What the endpoints do, apart from HTTP: submit an upload, wait for its answer, look a job up."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Literal

from starlette.concurrency import run_in_threadpool

from .. import keys
from ..errors import ImgrecError, ObjectNotFound
from ..messages import ClassifyRequest, ClassifyResult
from ..ports import Backend
from .errors import ApiError
from .replies import ReplyDispatcher
from .uploads import Upload

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
        *, sync_timeout_s: float,
    ) -> None:
        self.backend = backend
        self.dispatcher = dispatcher
        self.reply_queue = reply_queue
        self.sync_timeout_s = sync_timeout_s

    async def submit(
        self, upload: Upload, *, wait: bool
    ) -> tuple[str, asyncio.Future[ClassifyResult] | None]:
        """Store the image and queue its request; with ``wait`` also register for the reply."""
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
            await run_in_threadpool(self._enqueue, request, upload.data)
        except BaseException:
            self.dispatcher.forget(request_id)
            raise
        return request_id, future

    def _enqueue(self, request: ClassifyRequest, data: bytes) -> None:
        self.backend.store.put(request.key, data)
        try:
            self.backend.requests.send([request.encode()])
        except ImgrecError:
            # Not queued: the client gets an error and no id, so the image would be an orphan.
            with contextlib.suppress(ImgrecError):
                self.backend.store.delete(request.key)
            raise

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
        return await run_in_threadpool(self._lookup, request_id)

    def _lookup(self, request_id: str) -> JobStatus:
        store = self.backend.store
        try:
            result = ClassifyResult.from_json(store.get(keys.result_key(request_id)))
        except ObjectNotFound:
            if store.exists(keys.input_key(request_id)):
                return JobStatus(request_id, "queued", None)
            raise ApiError(404, "job_not_found", f"No job with id {request_id!r}.") from None
        return JobStatus(request_id, "done" if result.ok else "failed", result)
