"""The one percentile function: nearest rank (the simulator, the status page) or interpolated."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float, *, interpolate: bool = False) -> float | None:
    """The ``q``-th percentile (0-100) of ``values``; None for no values.

    By default the nearest-rank value (always one of the values); with ``interpolate``, linear
    interpolation between the two nearest ranks (numpy's default method).

    Example::

        percentile([1.0, 2.0, 3.0, 4.0], 50)                    # 2.0
        percentile([1.0, 2.0, 3.0, 4.0], 50, interpolate=True)  # 2.5
    """
    ordered = sorted(values)
    if not ordered:
        return None
    if not interpolate:
        return float(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)])
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))
