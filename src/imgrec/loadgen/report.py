"""The final report: plain text for people, a JSON document for scripts (``--json``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from .stats import RequestRecord, StatusSample, Summary


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def render_report(summary: Summary, *, checked: bool) -> str:
    """A few aligned lines: requests, throughput, latency, errors by kind, correctness."""
    errors = (
        ", ".join(f"{kind} {count}" for kind, count in summary.errors.items())
        if summary.errors else "none"
    )
    lines = [
        f"requests     {summary.requests} sent, {summary.answered} answered, "
        f"{summary.error_count} errors in {summary.elapsed_s:.2f} s",
        f"throughput   {summary.throughput_rps:.1f} answers/s",
        f"latency      mean {_ms(summary.latency_mean_s)}  p50 {_ms(summary.latency_p50_s)}  "
        f"p90 {_ms(summary.latency_p90_s)}  p99 {_ms(summary.latency_p99_s)}  "
        f"max {_ms(summary.latency_max_s)}",
        f"errors       {errors}",
    ]
    if checked:
        lines.append(
            f"answers      {summary.correct} correct, {summary.wrong} wrong, "
            f"{summary.unchecked} unchecked"
        )
    else:
        lines.append(f"answers      {summary.answered} unchecked (no --expected CSV)")
    return "\n".join(lines)


def _finite(value: Any) -> Any:
    # JSON has no NaN: an empty run's latencies become null.
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def report_document(
    summary: Summary,
    records: Sequence[RequestRecord],
    samples: Sequence[StatusSample],
    config: dict[str, Any],
) -> dict[str, Any]:
    """The ``--json`` document: config, summary, every request and every status sample."""
    return {
        "config": config,
        "summary": {k: _finite(v) for k, v in summary.to_dict().items()},
        "requests": [asdict(r) for r in records],
        "status": [asdict(s) for s in samples],
    }
