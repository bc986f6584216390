"""A job's state, derived from what the store holds, and the results that end a job early.

A job has no record of its own: ``inputs/<id>`` while it waits, ``results/<id>.json`` once it
has an outcome. The result is the job's one terminal state and the first one written wins
(``ObjectStore.put_if_absent``): a cancel that lands first keeps a job cancelled even if a
worker classified it meanwhile, and a result stored first makes a later cancel a 409.

    queued             the input is stored, no result yet
    done               classified (``result.ok``)
    failed             could not be classified (bad image, model error; ``error`` says why)
    cancelled          ``DELETE /api/v1/jobs/{id}`` came first; never classified
    deadline_exceeded  no worker took it before its deadline; never classified
"""

from __future__ import annotations

from typing import Literal

from .messages import ClassifyResult

JobState = Literal["queued", "done", "failed", "cancelled", "deadline_exceeded"]
JOB_STATES: tuple[JobState, ...] = ("queued", "done", "failed", "cancelled", "deadline_exceeded")

CANCELLED = "cancelled"
DEADLINE_EXCEEDED = "deadline_exceeded"


def state_of(result: ClassifyResult) -> JobState:
    """The state of a job with this stored result."""
    if result.ok:
        return "done"
    if result.error_code == CANCELLED:
        return "cancelled"
    if result.error_code == DEADLINE_EXCEEDED:
        return "deadline_exceeded"
    return "failed"


def cancelled_result(request_id: str) -> ClassifyResult:
    return ClassifyResult.failure(
        request_id, CANCELLED, "The job was cancelled (DELETE /api/v1/jobs/{id}) before a "
        "worker classified it.")


def deadline_result(request_id: str, late_s: float, model: str = "") -> ClassifyResult:
    return ClassifyResult.failure(
        request_id, DEADLINE_EXCEEDED,
        f"The request's deadline passed {late_s:.1f} s before a worker took it, so it was not "
        "classified. Send it again with a later deadline (X-Deadline-S) if it is still wanted.",
        model)
