"""Keep the requests a worker is working on invisible for as long as the worker is alive.

The request queue's visibility timeout is short (``visibility_timeout_s``, seconds), so the
requests of a worker that died come back quickly. A live worker extends it: a thread looks every
sixth of the timeout and extends each message held for a third of it or longer, so a message
always has at least half the timeout left, and a batch that ends within a third of it (nearly
all) costs no extension call at all. A batch held longer than ``max_hold_s`` is no longer
extended, so the requests of a hung (alive but stuck) worker go to another one.

Example::

    leases = Leases(requests, visibility_s=6.0, max_hold_s=300.0)
    leases.start()
    leases.hold([m.receipt for m in batch])
    ...                          # classify for as long as it takes
    leases.drop([m.receipt for m in batch])
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import ImgrecError
from ..ports import Queue

log = logging.getLogger(__name__)


@dataclass
class _Held:
    since: float
    extended_at: float


class Leases:
    """The receipts a worker holds, extended in a background thread (``start``/``stop``).

    ``on_tick`` runs on every look (every sixth of the timeout): the worker keeps its
    heartbeat fresh from there during a long batch.
    """

    def __init__(
        self,
        queue: Queue,
        *,
        visibility_s: float,
        max_hold_s: float,
        on_tick: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = queue
        self.visibility_s = visibility_s
        self.max_hold_s = max_hold_s
        self.on_tick = on_tick
        self.extensions = 0
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, receipts: Sequence[str]) -> None:
        """Start keeping these (just received) messages invisible."""
        now = self._clock()
        with self._lock:
            for receipt in receipts:
                self._held[receipt] = _Held(now, now)

    def drop(self, receipts: Sequence[str]) -> None:
        """Stop extending these messages (deleted, or left for redelivery)."""
        with self._lock:
            for receipt in receipts:
                self._held.pop(receipt, None)

    def held(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._held)

    def extend_due(self) -> int:
        """Extend every message held for a third of the timeout or longer; return how many."""
        now = self._clock()
        with self._lock:
            due = [r for r, h in self._held.items()
                   if now - h.extended_at >= self.visibility_s / 3
                   and now - h.since < self.max_hold_s]
            stuck = [r for r, h in self._held.items() if now - h.since >= self.max_hold_s]
        for receipt in stuck:
            log.error("request held for over %.0f s: no longer extended, it goes to another "
                      "worker", self.max_hold_s)
            self.drop([receipt])
        extended = 0
        for receipt in due:
            try:
                self.queue.change_visibility(receipt, self.visibility_s)
            except ImgrecError as exc:  # the next look tries again; the timeout leaves room
                log.warning("visibility not extended: %s", exc)
                continue
            with self._lock:
                if receipt in self._held:
                    self._held[receipt].extended_at = now
            extended += 1
        self.extensions += extended
        return extended

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="leases", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.visibility_s + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.visibility_s / 6):
            self.extend_due()
            if self.on_tick is not None:
                self.on_tick()
