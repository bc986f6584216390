"""A job as the API shows it (``GET /api/v1/jobs/{id}``, its events, its webhook body)."""

from __future__ import annotations

from ..messages import ClassifyResult
from .schemas import CallbackDelivery, Job
from .webhooks import CallbackRecord


def job_body(request_id: str, result: ClassifyResult | None,
             callback: CallbackRecord | None = None) -> Job:
    """The job document (``Job.from_result``) with its webhook's delivery state, if any."""
    job = Job.from_result(request_id, result)
    if callback is not None:
        job.callback = CallbackDelivery(**callback.public())
    return job


def webhook_body(request_id: str, result: ClassifyResult) -> bytes:
    """What is POSTed to the callback URL: the job document without the delivery state."""
    return job_body(request_id, result).model_dump_json(exclude={"callback"}).encode()
