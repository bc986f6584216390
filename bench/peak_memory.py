"""The largest memory of a process tree while a block of code runs (sampled in a thread).

    with PeakMemory(service.pid, tree_memory) as peak:   # proctree.tree_memory
        run_load(...)
    peak.rss_bytes, peak.pss_bytes
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType


class PeakMemory:
    """Samples ``measure(pid)`` (RSS, PSS in bytes) every ``interval_s``; keeps each maximum."""

    def __init__(self, pid: int, measure: Callable[[int], tuple[int, int]],
                 interval_s: float = 0.5) -> None:
        self.pid, self.interval_s, self.measure = pid, interval_s, measure
        self.rss_bytes = self.pss_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        rss, pss = self.measure(self.pid)
        self.rss_bytes, self.pss_bytes = max(self.rss_bytes, rss), max(self.pss_bytes, pss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def to_dict(self) -> dict[str, float]:
        return {"peak_rss_mb": self.rss_bytes / 2**20, "peak_pss_mb": self.pss_bytes / 2**20}
