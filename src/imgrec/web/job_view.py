"""A job as the API shows it (``GET /api/v1/jobs/{id}``, its events, its webhook body)."""

from __future__ import annotations

from ..messages import ClassifyResult
from .schemas import CallbackDelivery, Classification, Job
from .webhooks import CallbackRecord


def job_body(request_id: str, result: ClassifyResult | None,
             callback: CallbackRecord | None = None) -> Job:
    """The job document: queued without a result, else done or failed with it."""
    delivery = CallbackDelivery(**callback.public()) if callback is not None else None
    if result is None:
        return Job(id=request_id, status="queued", callback=delivery)
    if not result.ok:
        return Job(id=request_id, status="failed", error=result.error_code,
                   detail=result.error, callback=delivery)
    return Job(id=request_id, status="done", result=Classification.from_result(result),
               callback=delivery)


def webhook_body(request_id: str, result: ClassifyResult) -> bytes:
    """What is POSTed to the callback URL: the job document without the delivery state."""
    return job_body(request_id, result).model_dump_json(exclude={"callback"}).encode()
