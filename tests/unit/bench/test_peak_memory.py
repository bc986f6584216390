"""PeakMemory sees memory that is taken and given back inside its block."""

from __future__ import annotations

import os
import time

from bench.peak_memory import PeakMemory
from bench.proctree import tree_memory

MB = 2**20


def test_the_peak_outlives_the_allocation() -> None:
    before, _ = tree_memory(os.getpid())
    with PeakMemory(os.getpid(), tree_memory, interval_s=0.02) as peak:
        block = bytearray(200 * MB)  # zero-filled: every page is touched
        time.sleep(0.2)
        del block
    after, _ = tree_memory(os.getpid())
    assert peak.rss_bytes >= before + 150 * MB
    assert peak.rss_bytes > after + 100 * MB
    assert 0 < peak.pss_bytes <= peak.rss_bytes
    assert peak.to_dict()["peak_rss_mb"] == peak.rss_bytes / MB
