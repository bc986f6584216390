"""Batch intake gives way to interactive requests in the same web tier."""

from __future__ import annotations

import time

from .limits import ClientConcurrency


class YieldToInteractive:
    """Batch intake waits, before each group of items, while interactive requests are in
    progress (up to ``max_wait_s`` a group, ``budget_s`` a part), so their uploads do not
    queue behind a batch part's writes for the disk and the interpreter."""

    def __init__(self, limits: ClientConcurrency, *, max_wait_s: float = 0.2,
                 budget_s: float = 5.0) -> None:
        self.limits = limits
        self.max_wait_s = max_wait_s
        self.budget_s = budget_s

    def wait(self) -> None:
        if self.budget_s <= 0:
            return
        started = time.monotonic()
        self.limits.wait_until_idle(min(self.max_wait_s, self.budget_s))
        self.budget_s -= time.monotonic() - started
