"""What a client may ask of a job besides its image: an idempotency key and a deadline.

Both come as request headers, so they work the same on every upload route (``POST /``,
``/api/v1/classify``, ``/api/v1/jobs``) whatever parses the body:

- ``Idempotency-Key: <1-255 printable ASCII>``: see ``idempotency.py``.
- ``X-Deadline-S: <seconds>``: relative to when the request arrives, more than 0 and at most
  ``MAX_DEADLINE_S``. A worker that takes the request later answers ``deadline_exceeded``
  without running the model. Synchronous requests default to their wait limit
  (``sync_timeout_s``); jobs have none unless asked.

Example::

    options = job_options(request.headers)
    request_id, future = await service.submit(upload, wait=True, options=options)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ApiError
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .idempotency import validate_key

DEADLINE_HEADER = "X-Deadline-S"
MAX_DEADLINE_S = 7 * 86400.0


@dataclass(frozen=True)
class JobOptions:
    idempotency_key: str | None = None
    deadline_s: float | None = None  # seconds from arrival


def job_options(headers: Mapping[str, str]) -> JobOptions:
    """The options in a request's headers; a 400 naming the header that is wrong."""
    key = headers.get(IDEMPOTENCY_HEADER)
    return JobOptions(
        idempotency_key=None if key is None else validate_key(key),
        deadline_s=_deadline(headers.get(DEADLINE_HEADER)),
    )


def _deadline(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (0 < value <= MAX_DEADLINE_S):  # also refuses nan and inf
        raise ApiError(
            400, "invalid_deadline",
            f"The {DEADLINE_HEADER} header must be a number of seconds, more than 0 and at "
            f"most {MAX_DEADLINE_S:g} (7 days); got {raw[:40]!r}.")
    return value


# The headers in the OpenAPI schema of each upload route (the routes read them themselves).
OPENAPI_HEADERS: list[dict[str, object]] = [
    {"name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
     "description": "Makes a retry safe: the same key with the same image answers with the "
                    "first job (same id, same result, classified once); with another image it "
                    "is 409 idempotency_key_reused. Keys are global to the service and expire "
                    "with their job (retention). 1-255 printable ASCII characters.",
     "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                "pattern": r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"}},
    {"name": DEADLINE_HEADER, "in": "header", "required": False,
     "description": "Seconds from now after which the answer is no longer wanted: a worker that "
                    "takes the request later answers deadline_exceeded without running the "
                    "model. Default for synchronous routes: their wait limit "
                    "(IMGREC_SYNC_TIMEOUT_S); for jobs: none.",
     "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DEADLINE_S}},
]
