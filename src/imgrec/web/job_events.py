"""Live progress of jobs as server-sent events (``sse.py``), and a job's full view.

``GET /api/v1/jobs/{id}/events`` streams ``event: state`` with the job document (as
``GET /api/v1/jobs/{id}``) on connect and on each change, and ends once the job is done or
failed. ``GET /api/v1/job-events?id=..&id=..`` does the same for up to ``MAX_IDS`` jobs in one
stream (the page: browsers allow six connections per host). The reply dispatcher wakes the
streams when an answer arrives here; otherwise they re-read the store every ``POLL_S``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from .. import keys
from .errors import ApiError
from .job_view import job_body
from .schemas import ErrorBody, Job
from .sse import MEDIA_TYPE, State, event_stream_response, state_events

if TYPE_CHECKING:
    from .app import Runtime

POLL_S = 2.0
MAX_IDS = 200
_STREAM: dict[int | str, dict[str, Any]] = {200: {
    "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
    "description": "`event: state` with the job document as `data` (JSON) on connect and on "
                   "each change; the stream ends once the job is done or failed."}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such job."},
    410: {"model": ErrorBody, "description": "The job is past retention."},
    503: {"model": ErrorBody, "description": "Backend unreachable."},
}


async def read_job(rt: Runtime, job_id: str) -> Job:
    """The job document with its webhook's delivery state (404/410 as ``ApiError``)."""
    status = await rt.service.lookup(job_id)
    callback = None
    if rt.webhooks is not None:
        callback = await rt.calls.run("reading the webhook state", rt.webhooks.record, job_id)
    return job_body(job_id, status.result, callback)


def _events(rt: Runtime, job_ids: list[str]) -> StreamingResponse:
    async def read(job_id: str) -> State:
        try:
            job = await read_job(rt, job_id)
        except ApiError as exc:  # gone meanwhile (retention): a final state of its own
            return State({"id": job_id, "status": "failed", "error": exc.code,
                          "detail": exc.detail}, final=True)
        return State(job.model_dump(mode="json", exclude_none=True),
                     final=job.status != "queued")

    return event_stream_response(state_events(job_ids, read, rt.job_changes.wait_any,
                                              poll_s=POLL_S, stopping=rt.streams_end.is_set))


def job_events_router(runtime: Callable[[], Runtime]) -> APIRouter:
    router = APIRouter(tags=["jobs"])

    @router.get("/api/v1/jobs/{job_id}/events", response_class=StreamingResponse,
                summary="Stream a job's state changes as server-sent events",
                responses={**_STREAM, **_ERRORS})
    async def job_events(job_id: str) -> StreamingResponse:
        rt = runtime()
        await rt.service.lookup(job_id)  # 404/410 before the stream starts
        return _events(rt, [job_id])

    @router.get("/api/v1/job-events", response_class=StreamingResponse,
                summary="Stream the state changes of several jobs as server-sent events",
                responses={**_STREAM, 400: {"model": ErrorBody, "description":
                                            "No id, too many, or one that is not a job id."},
                           503: _ERRORS[503]})
    async def many_job_events(
        job_id: Annotated[list[str], Query(alias="id", description=f"Job ids (1-{MAX_IDS}).")],
    ) -> StreamingResponse:
        rt = runtime()
        ids = list(dict.fromkeys(job_id))
        if not ids or len(ids) > MAX_IDS:
            raise ApiError(400, "invalid_ids", f"Give 1 to {MAX_IDS} job ids (?id=..&id=..).")
        bad = [i for i in ids if not keys.is_request_id(i)]
        if bad:
            raise ApiError(400, "invalid_ids", f"Not a job id: {bad[0][:40]!r}.")
        return _events(rt, ids)

    return router
