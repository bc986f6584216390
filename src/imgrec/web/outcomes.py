"""How a synchronous route answers a job that did not end ``done``."""

from __future__ import annotations

from ..job_states import state_of
from ..messages import ClassifyResult
from .errors import ApiError

# cancelled: someone else ended the job (409). deadline_exceeded: the client's own deadline
# (X-Deadline-S) passed before a worker took it: 408, as Twirp maps its deadline_exceeded; a 5xx
# would blame the service for the client's choice (504 stays for the server's own wait limit).
# Anything else: the image (422).
DEADLINE_STATUS = 408
_STATUS = {"cancelled": 409, "deadline_exceeded": DEADLINE_STATUS}


def raise_unless_done(result: ClassifyResult) -> None:
    if result.ok:
        return
    raise ApiError(
        _STATUS.get(state_of(result), 422), result.error_code or "classification_failed",
        result.error or "The image could not be classified.", id=result.request_id,
    )
