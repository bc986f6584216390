"""Per-request records and the summary computed from them: pure functions, no I/O."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..percentile import percentile

OK = "ok"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request: when it started (s since the run began), how long it took, what came back.

    ``outcome`` is ``ok`` or an error kind: ``timeout``, ``connection``, ``http_<status>``,
    ``bad_body``. ``correct`` is None when the answer could not be checked.
    """

    index: int
    file: str
    started_s: float
    latency_s: float
    outcome: str
    label: str | None = None
    class_index: int | None = None
    correct: bool | None = None


@dataclass(frozen=True, slots=True)
class StatusSample:
    """One poll of ``GET /api/v1/status``: backlog and workers at ``at_s`` since the start."""

    at_s: float
    visible: int
    in_flight: int
    workers: int
    by_state: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Summary:
    """What a run amounts to; ``to_dict`` is the ``summary`` of ``--json``."""

    requests: int
    answered: int
    errors: dict[str, int]
    correct: int
    wrong: int
    unchecked: int
    elapsed_s: float
    throughput_rps: float
    latency_mean_s: float
    latency_p50_s: float
    latency_p90_s: float
    latency_p99_s: float
    latency_max_s: float

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(records: Sequence[RequestRecord], elapsed_s: float) -> Summary:
    """Counts, throughput (answered per second of wall time) and latency of answered requests."""
    answered = [r for r in records if r.outcome == OK]
    latencies = sorted(r.latency_s for r in answered)
    errors = Counter(r.outcome for r in records if r.outcome != OK)
    nan = math.nan
    return Summary(
        requests=len(records),
        answered=len(answered),
        errors=dict(sorted(errors.items())),
        correct=sum(1 for r in answered if r.correct is True),
        wrong=sum(1 for r in answered if r.correct is False),
        unchecked=sum(1 for r in answered if r.correct is None),
        elapsed_s=elapsed_s,
        throughput_rps=len(answered) / elapsed_s if elapsed_s > 0 else 0.0,
        latency_mean_s=sum(latencies) / len(latencies) if latencies else nan,
        latency_p50_s=_latency_percentile(latencies, 50),
        latency_p90_s=_latency_percentile(latencies, 90),
        latency_p99_s=_latency_percentile(latencies, 99),
        latency_max_s=latencies[-1] if latencies else nan,
    )


def _latency_percentile(latencies: Sequence[float], q: float) -> float:
    value = percentile(latencies, q, interpolate=True)
    return math.nan if value is None else value
