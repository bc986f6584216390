"""Traffic traces for the simulator: request arrival times in seconds from the start.

Specs (``imgrec simulate --trace``):

- ``burst:N``: N requests at once (the course's grading run is ``burst:100``).
- ``ramp[:PEAK_RPS[:DURATION_S]]``: the arrival rate grows linearly from 0 to PEAK_RPS
  (default 20/s) over DURATION_S (default 300 s), then stops.
- ``diurnal[:PEAK_RPS[:PERIOD_S]]``: one compressed day: the rate follows
  ``PEAK * (1 - cos(2 pi t / PERIOD)) / 2`` (default 20/s over 1200 s).
- a path to a CSV file: one arrival time (seconds) per row, first column; a header is allowed.

Arrivals are deterministic (no random numbers): request k arrives where the integral of the rate
reaches k + 1/2, so the same spec always gives the same trace.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class TraceError(ValueError):
    """A trace spec or CSV file that cannot be read; the message says what to fix."""


@dataclass(frozen=True)
class Trace:
    name: str
    arrivals: tuple[float, ...]

    @property
    def duration_s(self) -> float:
        return self.arrivals[-1] if self.arrivals else 0.0


def _numbers(spec: str, parts: list[str], defaults: tuple[float, ...]) -> list[float]:
    if len(parts) > len(defaults):
        raise TraceError(f"trace {spec!r}: too many parameters (at most {len(defaults)})")
    values = list(defaults)
    for i, part in enumerate(parts):
        try:
            values[i] = float(part)
        except ValueError as exc:
            raise TraceError(f"trace {spec!r}: {part!r} is not a number") from exc
        if values[i] <= 0:
            raise TraceError(f"trace {spec!r}: {part!r} must be positive")
    return values


def from_cumulative(count: int, cumulative: Callable[[float], float], end_s: float) -> list[float]:
    """Arrival times where a non-decreasing ``cumulative(t)`` reaches k + 1/2 (bisection)."""
    times: list[float] = []
    for k in range(count):
        goal, lo, hi = k + 0.5, (times[-1] if times else 0.0), end_s
        for _ in range(50):
            mid = (lo + hi) / 2
            if cumulative(mid) < goal:
                lo = mid
            else:
                hi = mid
        times.append(round(hi, 6))
    return times


def ramp(peak_rps: float, duration_s: float) -> list[float]:
    def total(t: float) -> float:
        return peak_rps * t * t / (2 * duration_s)

    return from_cumulative(round(total(duration_s)), total, duration_s)


def diurnal(peak_rps: float, period_s: float) -> list[float]:
    w = 2 * math.pi / period_s

    def total(t: float) -> float:
        return peak_rps / 2 * (t - math.sin(w * t) / w)

    return from_cumulative(round(total(period_s)), total, period_s)


def read_csv(path: Path) -> list[float]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.reader(fh) if row and row[0].strip()]
    except OSError as exc:
        raise TraceError(f"cannot read trace file {path}: {exc.strerror}") from exc
    times: list[float] = []
    for line, row in enumerate(rows, start=1):
        try:
            times.append(float(row[0]))
        except ValueError as exc:
            if line == 1:
                continue  # a header
            raise TraceError(f"{path}, row {line}: {row[0]!r} is not a time in seconds") from exc
    if not times:
        raise TraceError(f"{path}: no arrival times (one number of seconds per row expected)")
    if min(times) < 0:
        raise TraceError(f"{path}: arrival times must not be negative")
    return sorted(times)


def parse_trace(spec: str) -> Trace:
    """The trace a spec names (see the module docstring); ``TraceError`` if it is not valid."""
    kind, _, rest = spec.partition(":")
    params = rest.split(":") if rest else []
    if kind == "burst":
        if len(params) != 1 or not params[0].isdigit() or int(params[0]) < 1:
            raise TraceError(f"trace {spec!r}: write burst:N with N a positive whole number")
        return Trace(spec, (0.0,) * int(params[0]))
    if kind == "ramp":
        peak, duration = _numbers(spec, params, (20.0, 300.0))
        return Trace(spec, tuple(ramp(peak, duration)))
    if kind == "diurnal":
        peak, period = _numbers(spec, params, (20.0, 1200.0))
        return Trace(spec, tuple(diurnal(peak, period)))
    path = Path(spec)
    if path.suffix.lower() == ".csv" or path.exists():
        return Trace(path.name, tuple(read_csv(path)))
    raise TraceError(
        f"unknown trace {spec!r}: use burst:N, ramp[:PEAK_RPS[:DURATION_S]], "
        "diurnal[:PEAK_RPS[:PERIOD_S]] or a CSV file of arrival times"
    )
