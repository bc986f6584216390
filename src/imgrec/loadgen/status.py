"""Reading the service's ``GET /api/v1/status``: backlog and workers, for plots and benchmarks.

Shape: ``{"queue": {"visible", "in_flight"}, "workers": {"total", "by_state": {...}}, ...}``.
A deployment without the endpoint answers 404; callers then stop asking.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .stats import StatusSample

CLASSIFY_PATH = "/api/v1/classify"
STATUS_PATH = "/api/v1/status"


def service_base(url: str) -> str:
    """``http://host:3000/`` or ``.../api/v1/classify`` -> ``http://host:3000``."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith(CLASSIFY_PATH):
        path = path[: -len(CLASSIFY_PATH)]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def parse_status(data: Any, at_s: float) -> StatusSample | None:
    """A sample from the endpoint's JSON, or None if it is not that shape."""
    try:
        queue, workers = data["queue"], data["workers"]
        return StatusSample(
            at_s=at_s,
            visible=int(queue["visible"]),
            in_flight=int(queue["in_flight"]),
            workers=int(workers["total"]),
            by_state={str(k): int(v) for k, v in (workers.get("by_state") or {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
