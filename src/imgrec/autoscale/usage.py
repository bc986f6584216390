"""Worker-seconds per image: what the fleet cost, per image it classified (pure).

Every tick the controller hands the meter the workers it listed. A worker costs from launch
until it is gone whatever it does (booting, idle and draining included: EC2 bills them all),
so ``worker_seconds`` integrates the number of listed workers over time; ``images`` sums each
worker's ``processed`` count (from its heartbeat), keeping the counts of workers that are gone.

Example::

    meter = UsageMeter()
    meter.observe(0.0, workers)
    meter.observe(0.5, workers)
    meter.usage().worker_seconds_per_image
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..ports import WorkerInfo


@dataclass(frozen=True)
class Usage:
    """Worker-seconds and images classified since the meter started."""

    worker_seconds: float
    images: int

    @property
    def worker_seconds_per_image(self) -> float | None:
        return self.worker_seconds / self.images if self.images else None


class UsageMeter:
    """Integrates worker-seconds and counts processed images across ticks."""

    def __init__(self) -> None:
        self._worker_seconds = 0.0
        self._last_t: float | None = None
        self._last_count = 0
        self._processed: dict[str, int] = {}
        self._gone_images = 0

    def observe(self, now: float, workers: Sequence[WorkerInfo]) -> None:
        if self._last_t is not None and now > self._last_t:
            # The fleet as seen at the previous tick is what ran during the interval.
            self._worker_seconds += (now - self._last_t) * self._last_count
        self._last_t, self._last_count = now, len(workers)
        seen = {w.worker_id for w in workers}
        for worker_id in [w for w in self._processed if w not in seen]:
            self._gone_images += self._processed.pop(worker_id)
        for w in workers:
            self._processed[w.worker_id] = max(self._processed.get(w.worker_id, 0), w.processed)

    def usage(self) -> Usage:
        return Usage(self._worker_seconds, self._gone_images + sum(self._processed.values()))


def price_per_1000_images(worker_seconds_per_image: float | None,
                          price_per_hour: float | None) -> float | None:
    """The estimated price of 1,000 images at a worker's hourly price (None if unknown)."""
    if worker_seconds_per_image is None or price_per_hour is None:
        return None
    return 1000 * worker_seconds_per_image * price_per_hour / 3600
