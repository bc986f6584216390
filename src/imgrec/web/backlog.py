"""Overload is answered, not absorbed: past ``max_backlog`` new requests get 503 + Retry-After.

The backlog is the request queue's depth (waiting and in progress, shared by every web tier)
plus what this web tier queued since it last read it, plus the requests it has admitted and is
still storing (an ``Admission`` each: counted from the check on, so a burst cannot slip past
the cap between the check and the queue). The depth is read at most every
``refresh_s`` (one reading at a time, in the background; requests meanwhile use the last one),
so the check costs no backend call per request. ``Retry-After`` is the time the measured
throughput needs to work the backlog off, ``ceil(backlog / answered per second)``, within
1-300 s; 10 s while nothing has been answered yet.

Example::

    gate = BacklogGate(requests, calls, max_backlog=5000, rate_per_s=lambda: 120.0)
    admission = await gate.admit()  # or ApiError(503, "overloaded", headers={"Retry-After": ..})
    ...                             # store the upload, queue the request
    admission.queued()              # (``close()`` instead when it was not queued)
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from ..errors import ImgrecError
from ..ports import Queue
from .deadline import DeadlineCalls
from .errors import ApiError

log = logging.getLogger(__name__)
_UNKNOWN_RATE_RETRY_S = 10
_MAX_RETRY_S = 300


def retry_after_s(backlog: int, rate_per_s: float) -> int:
    """Seconds for ``rate_per_s`` to work off ``backlog`` requests, within 1-300 (pure)."""
    if rate_per_s <= 0:
        return _UNKNOWN_RATE_RETRY_S
    return max(1, min(_MAX_RETRY_S, math.ceil(backlog / rate_per_s)))


class Admission:
    """One admitted request, counted in the backlog until it is queued or given up."""

    def __init__(self, gate: BacklogGate) -> None:
        self._gate: BacklogGate | None = gate

    def queued(self) -> None:
        """The request is in the queue: it counts until the next depth reading includes it."""
        if self._gate is not None:
            self._gate._since_read += 1
        self.close()

    def close(self) -> None:
        """No longer being admitted (queued, failed or refused); safe to call again."""
        if self._gate is not None:
            self._gate._admitting -= 1
            self._gate = None


class BacklogGate:
    """Refuses new requests while the backlog is at or over ``max_backlog``."""

    def __init__(
        self,
        requests: Queue,
        calls: DeadlineCalls,
        *,
        max_backlog: int,
        rate_per_s: Callable[[], float],
        refresh_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.requests = requests
        self.calls = calls
        self.max_backlog = max_backlog
        self.rate_per_s = rate_per_s
        self.refresh_s = refresh_s
        self.refused = 0
        self._clock = clock
        self._depth: int | None = None
        self._rate = 0.0
        self._read_at = -math.inf
        self._since_read = 0
        self._admitting = 0
        self._reading: asyncio.Task[None] | None = None

    @property
    def backlog(self) -> int:
        return (self._depth or 0) + self._since_read + self._admitting

    async def admit(self) -> Admission:
        """Admit one request, or raise a 503 with ``Retry-After`` at or past the cap."""
        await self.check()
        # No await between the check and the count: no other request can slip in between.
        self._admitting += 1
        return Admission(self)

    async def check(self) -> None:
        if self._reading is None and self._clock() - self._read_at >= self.refresh_s:
            self._reading = asyncio.ensure_future(self._read())
        if self._depth is None and self._reading is not None:
            await asyncio.shield(self._reading)  # nothing known yet: wait for the first reading
        backlog = self.backlog
        if backlog < self.max_backlog:
            return
        self.refused += 1
        wait_s = retry_after_s(backlog, self._rate)
        rate = f"{self._rate:.3g} requests/s" if self._rate > 0 else "an unknown rate"
        raise ApiError(
            503, "overloaded",
            f"The service has {backlog} requests waiting or in progress (its cap is "
            f"{self.max_backlog}); at {rate} that takes about {wait_s} s. Retry after "
            f"{wait_s} s.",
            headers={"Retry-After": str(wait_s)}, backlog=backlog, retry_after_s=wait_s,
        )

    async def _read(self) -> None:
        try:
            depth = await self.calls.run("reading the request queue's depth",
                                         self.requests.depth)
            self._depth, self._since_read = depth.total, 0
            self._rate = self.rate_per_s()
        except ImgrecError as exc:  # the request itself will meet the outage, and say so
            log.debug("backlog not read: %s", exc)
        finally:
            self._read_at = self._clock()
            self._reading = None
