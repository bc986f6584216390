"""The arrival rate, estimated from what a controller observes: queue depth and processed counts.

No component sees requests arrive, but every request is either still in the backlog (visible or
in flight) or has been processed, and heartbeats carry each worker's ``processed`` count. So the
cumulative number of arrivals is ``backlog + completions seen so far``; its slope is the arrival
rate. ``ArrivalHistory`` keeps those cumulative samples (a frozen value the policy's state
carries from tick to tick), and ``arrival_estimate`` reads a level and a trend from them:

- the window is cut into ``SUB_WINDOWS`` equal parts and the level is the **median** of their
  rates, so a one-off burst (all in one part) is not taken for a sustained rate: the burst is
  backlog, sized as such, and would otherwise keep workers up long after it is served;
- the trend is the Theil-Sen slope (median of pairwise slopes) of the same parts, each counted
  at no more than twice the level, so a burst does not pass for a rise either.

Example::

    history = ArrivalHistory()
    for t in range(0, 61, 1):   # 10 requests/s arrive, nothing is served yet
        history = history.observe(t, backlog=10 * t, workers=())
    arrival_estimate(history, now=60, window_s=50).rate  # 10.0
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import combinations

from ..ports import WorkerInfo, WorkerState

SUB_WINDOWS = 5
MIN_KNOWN_SUB_WINDOWS = 3  # a median of fewer parts would let one burst pass for a rate
MAX_HISTORY_S = 120.0
UNCOUNTED_GRACE_S = 10.0  # seconds busy without a processed count: the fleet reports none
BURST_CAP = 2.0
TREND_NOISE_MARGIN = 2.0  # standard errors a trend must exceed before the fleet scales ahead


@dataclass(frozen=True)
class ArrivalHistory:
    """Cumulative arrivals seen at recent ticks, and the last ``processed`` count per worker."""

    samples: tuple[tuple[float, float], ...] = ()  # (time, backlog + completions so far)
    processed: tuple[tuple[str, int], ...] = ()
    completed: int = 0  # from the processed counts
    assumed: float = 0.0  # at the rate per busy worker, while no count has been seen
    uncounted_busy_s: float = 0.0  # seconds some worker was busy and no count was reported
    counts_seen: bool = False  # whether the fleet reports processed counts at all

    @property
    def assuming(self) -> bool:
        """Whether completions are assumed: busy a while, and never a count from the fleet."""
        return not self.counts_seen and self.uncounted_busy_s >= UNCOUNTED_GRACE_S

    def observe(
        self, now: float, backlog: int, workers: Sequence[WorkerInfo],
        rate_per_worker: float | None = None, keep_s: float = MAX_HISTORY_S,
    ) -> ArrivalHistory:
        """This tick's sample added, samples older than ``keep_s`` dropped.

        Completions are the growth of each worker's ``processed`` count since the last tick (all
        of it for a worker seen for the first time). A worker gone since the last tick takes its
        last few completions with it; the estimate is then slightly low, never negative. A fleet
        busy for ``UNCOUNTED_GRACE_S`` seconds (several heartbeats) without reporting a count is
        taken to report none: its busy workers are assumed to complete ``rate_per_worker``.
        """
        before = dict(self.processed)
        completed = self.completed + sum(
            max(0, w.processed - before.get(w.worker_id, 0)) for w in workers)
        seen = self.counts_seen or completed > 0
        assumed, uncounted = self.assumed, self.uncounted_busy_s
        if not seen and self.samples:
            busy, dt = sum(1 for w in workers if w.state == WorkerState.BUSY), \
                now - self.samples[-1][0]
            uncounted += dt if busy else 0.0
            assumed += busy * dt * (rate_per_worker or 0.0)
        kept = tuple(s for s in self.samples if now - s[0] <= keep_s and s[0] < now)
        if seen and self.assuming:
            # Counts after all: they replace what was assumed. Shift the past to match, so the
            # difference is not taken for arrivals.
            kept = tuple((t, a + completed - self.assumed) for t, a in kept)
        history = ArrivalHistory(kept, tuple((w.worker_id, w.processed) for w in workers),
                                 completed, assumed, uncounted, seen)
        # Arrivals never go down. A dip is a completion the heartbeats have not reported yet
        # (the backlog shrank first); counting its later catch-up as arrivals would invent a
        # stream of requests after a burst.
        done = assumed if history.assuming else completed
        total = max(backlog + done, kept[-1][1] if kept else 0.0)
        return replace(history, samples=(*kept, (now, total)))


@dataclass(frozen=True)
class ArrivalEstimate:
    """Requests/s arriving (``rate``) and how fast that changes (``trend``, requests/s per s).

    ``rate`` is the median over the window, so it describes the window's middle, ``lag_s``
    ago. ``trend_noise`` is the trend's standard error were arrivals a Poisson process: a slope
    that small is as likely chance as a rise.
    """

    rate: float
    trend: float
    trend_noise: float = 0.0
    lag_s: float = 0.0

    def ahead(self, horizon_s: float) -> float:
        """The rate expected ``horizon_s`` from now when clearly rising (beyond the noise).

        A falling trend is not trusted: scaling in early costs a boot when it turns out wrong.
        """
        rise = max(0.0, self.trend - TREND_NOISE_MARGIN * self.trend_noise)
        return self.rate + rise * (self.lag_s + horizon_s)


def cumulative_at(samples: Sequence[tuple[float, float]], t: float) -> float | None:
    """Cumulative arrivals at time ``t``, linear between samples; None before the first."""
    if not samples or t < samples[0][0] - 1e-9:
        return None
    for (t0, a0), (t1, a1) in zip(samples, samples[1:], strict=False):
        if t0 <= t <= t1:
            return a0 if t1 == t0 else a0 + (a1 - a0) * (t - t0) / (t1 - t0)
    return samples[-1][1]


def sub_window_rates(
    samples: Sequence[tuple[float, float]], now: float, window_s: float
) -> list[tuple[float, float]]:
    """(mid time, arrivals/s) of each known part of the last ``window_s``, oldest first."""
    part = window_s / SUB_WINDOWS
    rates: list[tuple[float, float]] = []
    for k in range(SUB_WINDOWS, 0, -1):
        start, end = now - k * part, now - (k - 1) * part
        a0, a1 = cumulative_at(samples, start), cumulative_at(samples, end)
        if a0 is not None and a1 is not None:
            rates.append(((start + end) / 2, max(0.0, (a1 - a0) / part)))
    return rates


def theil_sen_slope(points: Sequence[tuple[float, float]]) -> float:
    """The (lower) median of the slopes between every two points (0 for fewer than two).

    The lower one of an even count: with four points and one burst among them, half the
    slopes point up, and that is no trend.
    """
    slopes = [(y1 - y0) / (x1 - x0) for (x0, y0), (x1, y1) in combinations(points, 2) if x1 != x0]
    return statistics.median_low(slopes) if slopes else 0.0


def arrival_estimate(
    history: ArrivalHistory, now: float, window_s: float
) -> ArrivalEstimate | None:
    """The arrival rate over the last ``window_s``; None until enough of it has been observed."""
    rates = sub_window_rates(history.samples, now, window_s)
    if len(rates) < MIN_KNOWN_SUB_WINDOWS:
        return None
    level = statistics.median(r for _, r in rates)
    mids = [t for t, _ in rates]
    # A burst in one or two parts would tilt even a robust slope: parts count for the trend
    # at no more than BURST_CAP x the level.
    capped = [(t, min(r, BURST_CAP * level)) for t, r in rates]
    return ArrivalEstimate(level, theil_sen_slope(capped),
                           trend_noise(level, window_s / SUB_WINDOWS, mids),
                           lag_s=now - statistics.median(mids))


def trend_noise(rate: float, part_s: float, mids: Sequence[float]) -> float:
    """Standard error of a least-squares slope through Poisson counts of ``rate`` per part."""
    mean = statistics.fmean(mids)
    spread = sum((t - mean) ** 2 for t in mids)
    if spread <= 0:
        return 0.0
    return math.sqrt(max(rate, 1.0 / part_s) / part_s / spread)
