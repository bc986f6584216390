"""Traffic traces for the simulator: request arrival times in seconds from the start.

Specs (``imgrec simulate --trace``):

- ``burst:N``: N requests at once (the course's grading run is ``burst:100``).
- ``ramp[:PEAK_RPS[:DURATION_S]]``: the arrival rate grows linearly from 0 to PEAK_RPS
  (default 20/s) over DURATION_S (default 300 s), then stops.
- ``diurnal[:PEAK_RPS[:PERIOD_S]]``: one compressed day: the rate follows
  ``PEAK * (1 - cos(2 pi t / PERIOD)) / 2`` (default 20/s over 1200 s).
- ``flat[:RPS[:DURATION_S]]``: a constant rate (default 10/s over 600 s).
- ``poisson:SHAPE[:...][@SEED]``: the same rate as ``ramp``, ``diurnal`` or ``flat``, but arrivals
  are a Poisson process (random gaps, seeded: the same spec gives the same trace), e.g.
  ``poisson:diurnal:20:3600@7``.
- the name of a recorded trace that comes with imgrec (``bursty``, ``steady``: files in
  ``RECORDED_DIR``), or a path to a trace file.

Without ``poisson:`` arrivals are deterministic: request k arrives where the integral of the rate
reaches k + 1/2.

The trace file format (CSV, UTF-8): lines starting with ``#`` are comments; the first other row
may be a header (``arrival_s``); then one arrival time per row in the first column, in seconds
from the start of the trace (non-negative; any order, they are sorted). Further columns are
ignored.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

RECORDED_DIR = Path(__file__).with_name("recorded")
Rate = Callable[[float], float]


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


def flat(rps: float, duration_s: float) -> list[float]:
    return from_cumulative(round(rps * duration_s), lambda t: rps * t, duration_s)


def poisson(rate: Rate, peak_rps: float, end_s: float, seed: int) -> list[float]:
    """A Poisson process of intensity ``rate(t) <= peak_rps`` on [0, end_s] (by thinning)."""
    rng, t = random.Random(seed), 0.0
    times: list[float] = []
    while True:
        t += rng.expovariate(peak_rps)
        if t > end_s:
            return times
        if rng.random() * peak_rps < rate(t):
            times.append(round(t, 6))


def shape(spec: str, kind: str, params: list[str]) -> tuple[Rate, float, float] | None:
    """(rate function, its peak, its end) of a shaped trace; None if ``kind`` is not one."""
    if kind == "ramp":
        peak, duration = _numbers(spec, params, (20.0, 300.0))
        return (lambda t: peak * t / duration), peak, duration
    if kind == "diurnal":
        peak, period = _numbers(spec, params, (20.0, 1200.0))
        return (lambda t: peak * (1 - math.cos(2 * math.pi * t / period)) / 2), peak, period
    if kind == "flat":
        rps, duration = _numbers(spec, params, (10.0, 600.0))
        return (lambda t: rps), rps, duration
    return None


def read_csv(path: Path) -> list[float]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.reader(fh)
                    if row and row[0].strip() and not row[0].lstrip().startswith("#")]
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


def to_csv(arrivals: Sequence[float], comments: Sequence[str] = ()) -> str:
    """A trace file's text (the format above), e.g. to record a load generator's arrivals."""
    lines = [f"# {c}" for c in comments] + ["arrival_s"]
    lines += [f"{t:.3f}" for t in sorted(arrivals)]
    return "\n".join(lines) + "\n"


def parse_trace(spec: str) -> Trace:
    """The trace a spec names (see the module docstring); ``TraceError`` if it is not valid."""
    kind, _, rest = spec.partition(":")
    params = rest.split(":") if rest else []
    if kind == "burst":
        if len(params) != 1 or not params[0].isdigit() or int(params[0]) < 1:
            raise TraceError(f"trace {spec!r}: write burst:N with N a positive whole number")
        return Trace(spec, (0.0,) * int(params[0]))
    if kind == "poisson":
        return poisson_trace(spec, rest)
    if kind == "ramp":
        peak, duration = _numbers(spec, params, (20.0, 300.0))
        return Trace(spec, tuple(ramp(peak, duration)))
    if kind == "diurnal":
        peak, period = _numbers(spec, params, (20.0, 1200.0))
        return Trace(spec, tuple(diurnal(peak, period)))
    if kind == "flat":
        rps, duration = _numbers(spec, params, (10.0, 600.0))
        return Trace(spec, tuple(flat(rps, duration)))
    recorded = RECORDED_DIR / f"{spec}.csv"
    if ":" not in spec and "/" not in spec and recorded.is_file():
        return Trace(spec, tuple(read_csv(recorded)))
    path = Path(spec)
    if path.suffix.lower() == ".csv" or path.exists():
        return Trace(path.name, tuple(read_csv(path)))
    names = ", ".join(sorted(p.stem for p in RECORDED_DIR.glob("*.csv")))
    raise TraceError(
        f"unknown trace {spec!r}: use burst:N, ramp[:PEAK_RPS[:DURATION_S]], "
        "diurnal[:PEAK_RPS[:PERIOD_S]], flat[:RPS[:DURATION_S]], poisson:<one of those>[@SEED], "
        f"a recorded trace ({names}) or a CSV file of arrival times"
    )


def poisson_trace(spec: str, inner: str) -> Trace:
    inner, _, seed_text = inner.partition("@")
    try:
        seed = int(seed_text) if seed_text else 1
    except ValueError as exc:
        raise TraceError(f"trace {spec!r}: the seed {seed_text!r} is not a whole number") from exc
    kind, _, rest = inner.partition(":")
    found = shape(spec, kind, rest.split(":") if rest else [])
    if found is None:
        raise TraceError(f"trace {spec!r}: write poisson:ramp..., poisson:diurnal... or "
                         "poisson:flat... (optionally @SEED)")
    rate, peak, end = found
    return Trace(spec, tuple(poisson(rate, peak, end, seed)))
