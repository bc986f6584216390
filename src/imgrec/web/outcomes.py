"""How a synchronous route answers a job that did not end ``done``."""

from __future__ import annotations

from ..job_states import state_of
from ..messages import ClassifyResult
from .errors import ApiError

# cancelled: someone else ended the job (409); deadline_exceeded: the client's own time ran out
# before a worker took it (504, as a wait that ran out); anything else: the image (422).
_STATUS = {"cancelled": 409, "deadline_exceeded": 504}


def raise_unless_done(result: ClassifyResult) -> None:
    if result.ok:
        return
    raise ApiError(
        _STATUS.get(state_of(result), 422), result.error_code or "classification_failed",
        result.error or "The image could not be classified.", id=result.request_id,
    )
