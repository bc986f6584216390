"""Response bodies of the batch API, as documented in the OpenAPI schema."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class BatchItemRef(BaseModel):
    id: str = Field(description="The item's request id (also a job id: GET /api/v1/jobs/{id}).")
    file: str = Field(description="The file name, or the path inside the archive.")


class BatchAccepted(BaseModel):
    id: str = Field(description="Batch id (32 hex characters).")
    items: list[BatchItemRef] = Field(description="The items this request added.")
    poll: str = Field(description="URL of the batch's progress.")
    results: str = Field(description="URL of its results as CSV (?format=jsonl for JSON Lines).")
    events: str = Field(description="URL of its progress as server-sent events.")


class BatchSubmitted(BaseModel):
    id: str = Field(description="Batch id.")
    part: str = Field(description="Name of the part these items were stored as.")
    added: bool = Field(description="False when the part had been sent before: nothing new "
                        "was queued and the items are the stored ones.")
    items: list[BatchItemRef]


class BatchProgress(BaseModel):
    id: str
    created_at: float = Field(description="Unix time the batch was created.")
    status: Literal["empty", "running", "done"] = Field(
        description="done: every item has a result (classified or failed).")
    total: int = Field(description="Items in the batch.")
    counts: dict[str, int] = Field(description="Items by state: queued, done, failed.")
    poll: str
    results: str
    events: str
