"""Response bodies of the JSON API, as documented in the OpenAPI schema."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ..job_states import JobState, state_of
from ..messages import ClassifyResult


class Prediction(BaseModel):
    label: str = Field(description="Class name, e.g. 'brambling'.")
    class_index: int = Field(description="ImageNet-1k class index, 0-999.")
    probability: float = Field(description="Softmax probability, 0-1.")


class Classification(BaseModel):
    id: str = Field(description="Request id (32 hex characters).")
    file: str | None = Field(None, description="The uploaded file's name, as the client sent it.")
    label: str = Field(description="Top-1 class name.")
    class_index: int = Field(description="Top-1 ImageNet-1k class index.")
    probability: float = Field(description="Top-1 probability.")
    top5: list[Prediction]
    model: str = Field(description="Model that classified the image.")
    timings_ms: dict[str, float] = Field(
        description="queue_ms, decode_ms, inference_ms (per batch), batch_size, total_ms."
    )

    @classmethod
    def from_result(cls, result: ClassifyResult, **extra: Any) -> Classification:
        data = result.to_dict()
        return cls(
            id=result.request_id, label=data["label"], class_index=data["class_index"],
            probability=data["probability"], top5=data["top5"], model=result.model,
            timings_ms=result.timings_ms, **extra,
        )


class JobAccepted(BaseModel):
    id: str
    status: Literal["queued"] = "queued"
    poll: str = Field(description="URL to GET for the job's state and result.")


class CallbackDelivery(BaseModel):
    """How the job's webhook (``callback_url``) delivery went."""

    url: str = Field(description="Where the result is POSTed.")
    state: Literal["pending", "delivered", "failed"] = Field(
        description="pending: not (yet) accepted by the receiver; failed: every attempt failed.")
    attempts: int = Field(description="Deliveries tried so far.")
    last_status: int | None = Field(None, description="HTTP status of the last attempt.")
    last_error: str | None = Field(None, description="What went wrong in the last attempt.")
    next_attempt_at: float | None = Field(None, description="Next retry, Unix seconds.")
    delivered_at: float | None = Field(None, description="When a 2xx came back, Unix seconds.")


class Job(BaseModel):
    id: str
    status: JobState = Field(description=(
        "queued: waiting for a worker. done: classified, see result. failed: could not be "
        "classified (error says why, e.g. corrupt_image). cancelled: DELETE came first; never "
        "classified. deadline_exceeded: no worker took it before its X-Deadline-S; never "
        "classified. Every state but queued is final."))
    result: Classification | None = None
    error: str | None = Field(None, description=(
        "Error code when the status is failed, cancelled or deadline_exceeded (for the last "
        "two it equals the status)."))
    detail: str | None = Field(None, description="What went wrong, when there is an error.")
    callback: CallbackDelivery | None = Field(
        None, description="The webhook's delivery state, when the job named a callback_url.")

    @classmethod
    def from_result(cls, job_id: str, result: ClassifyResult | None) -> Job:
        """The job's document: queued without a result, else its state and outcome."""
        if result is None:
            return cls(id=job_id, status="queued")
        if not result.ok:
            return cls(id=job_id, status=state_of(result), error=result.error_code,
                       detail=result.error)
        return cls(id=job_id, status="done", result=Classification.from_result(result))


class ErrorBody(BaseModel):
    error: str = Field(description="Short machine-readable code, e.g. 'file_too_large'.")
    detail: str = Field(description="What is wrong and what to do about it.")


class Health(BaseModel):
    status: Literal["ok"]
    backend: str
    queue_visible: int
    queue_in_flight: int
