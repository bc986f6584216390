"""``DELETE /api/v1/jobs/{id}``: cancel a queued job."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from .schemas import ErrorBody, Job

if TYPE_CHECKING:
    from .app import Runtime


def _error(text: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": text}


def job_router(runtime: Callable[[], Runtime]) -> APIRouter:
    router = APIRouter()

    @router.delete(
        "/api/v1/jobs/{job_id}",
        response_model=Job,
        summary="Cancel a queued job",
        description=(
            "A queued job becomes `cancelled` and is never classified (a worker that took it "
            "before the cancel may run the model, but its answer is dropped: the first outcome "
            "stored wins). Cancelling a cancelled job answers the same again."),
        responses={
            200: {"description": "The job, now cancelled."},
            404: _error("No such job."),
            409: _error("The job is already finished (done, failed or deadline_exceeded): "
                        "error job_finished, job_status says which."),
            410: _error("The job is past retention; its objects were deleted."),
            503: _error("Backend unreachable."),
        },
    )
    async def cancel_job(job_id: str) -> Job:
        status = await runtime().service.cancel(job_id)
        return Job.from_result(job_id, status.result)

    return router
