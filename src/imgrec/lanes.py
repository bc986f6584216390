"""Two request lanes behind one ``Queue``: interactive requests first, batch items after.

Single requests (the course API, ``/api/v1/classify``, jobs) go to the ``requests`` queue;
items of a batch (``POST /api/v1/batches``) go to ``requests-bulk``. ``LanedRequests`` is the
``Queue`` the worker, its leases, the process fleet and the autoscaler use:

- ``receive`` and ``receive_batch`` take from the interactive lane, and from the bulk lane
  only when the interactive one has nothing. A batch never mixes the lanes, and bulk batches
  are capped at ``bulk_batch_size``, so an interactive request that arrives while every
  worker is busy on bulk waits for at most one small batch.
- A bulk message's receipt carries the prefix ``bulk|``; ``delete`` and ``change_visibility``
  route each receipt to the queue it came from, so leases, redelivery and the process fleet's
  release of a dead worker's receipts work for messages of either lane unchanged.
- ``depth`` is the sum of both lanes (what the autoscaler sizes the fleet for);
  ``lane_depths`` gives them apart (the status page).

Example::

    lanes = LanedRequests(backend.requests, backend.bulk)
    batch = lanes.receive_batch(max_size=8, bulk_max_size=4, first_wait_s=1.0, fill_wait_s=0.004)
    lanes.delete([m.receipt for m in batch])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .ports import Message, Queue, QueueDepth
from .worker.batching import collect_batch

BULK_RECEIPT_PREFIX = "bulk|"


class LanedRequests:
    """The interactive request queue and (optionally) the bulk lane, as one ``Queue``."""

    def __init__(self, interactive: Queue, bulk: Queue | None) -> None:
        self.interactive = interactive
        self.bulk = bulk
        self.name = interactive.name if bulk is None else f"{interactive.name}+{bulk.name}"

    def send(self, bodies: Sequence[str]) -> list[str]:
        """Send to the interactive lane (batch items are sent to ``bulk`` directly)."""
        return self.interactive.send(bodies)

    def receive(
        self, max_messages: int = 1, wait_s: float = 0.0, visibility_s: float | None = None
    ) -> list[Message]:
        """Interactive messages if there are any, else bulk ones; long-polls the interactive
        lane when both are empty."""
        found = self._receive_now(max_messages, max_messages, visibility_s)
        if found or wait_s <= 0:
            return found
        found = self.interactive.receive(max_messages, wait_s=wait_s, visibility_s=visibility_s)
        return found or self._bulk(max_messages, 0.0, visibility_s)

    def receive_batch(
        self, *, max_size: int, bulk_max_size: int, first_wait_s: float, fill_wait_s: float,
        visibility_s: float | None = None,
    ) -> list[Message]:
        """One batch from a single lane, interactive first (see the module docstring)."""
        def interactive(n: int, wait: float) -> list[Message]:
            return self.interactive.receive(n, wait_s=wait, visibility_s=visibility_s)

        def bulk(n: int, wait: float) -> list[Message]:
            return self._bulk(n, wait, visibility_s)

        batch = collect_batch(interactive, max_size=max_size, first_wait_s=0.0,
                              fill_wait_s=fill_wait_s)
        if batch:
            return batch
        if self.bulk is not None:
            batch = collect_batch(bulk, max_size=bulk_max_size, first_wait_s=0.0,
                                  fill_wait_s=fill_wait_s)
            if batch:
                return batch
        if first_wait_s <= 0:
            return []
        batch = collect_batch(interactive, max_size=max_size, first_wait_s=first_wait_s,
                              fill_wait_s=fill_wait_s)
        if batch or self.bulk is None:
            return batch
        # Bulk items that arrived during the interactive long poll: taken without waiting.
        return collect_batch(bulk, max_size=bulk_max_size, first_wait_s=0.0,
                             fill_wait_s=fill_wait_s)

    def receive_interactive_batch(
        self, *, max_size: int, first_wait_s: float, fill_wait_s: float,
        visibility_s: float | None = None,
    ) -> list[Message]:
        """One batch of the interactive lane only (a worker whose bulk lane has its own loop)."""
        return collect_batch(
            lambda n, wait: self.interactive.receive(n, wait_s=wait, visibility_s=visibility_s),
            max_size=max_size, first_wait_s=first_wait_s, fill_wait_s=fill_wait_s)

    def receive_bulk_batch(
        self, *, max_size: int, first_wait_s: float, fill_wait_s: float,
        visibility_s: float | None = None,
    ) -> list[Message]:
        """One batch of the bulk lane only, receipts marked as bulk."""
        return collect_batch(lambda n, wait: self._bulk(n, wait, visibility_s),
                             max_size=max_size, first_wait_s=first_wait_s,
                             fill_wait_s=fill_wait_s)

    def _receive_now(self, max_interactive: int, max_bulk: int,
                     visibility_s: float | None) -> list[Message]:
        found = self.interactive.receive(max_interactive, wait_s=0.0, visibility_s=visibility_s)
        return found or self._bulk(max_bulk, 0.0, visibility_s)

    def _bulk(self, n: int, wait_s: float, visibility_s: float | None) -> list[Message]:
        if self.bulk is None:
            return []
        got = self.bulk.receive(n, wait_s=wait_s, visibility_s=visibility_s)
        return [replace(m, receipt=BULK_RECEIPT_PREFIX + m.receipt) for m in got]

    def delete(self, receipts: Sequence[str]) -> None:
        interactive, bulk = self._split(receipts)
        if interactive:
            self.interactive.delete(interactive)
        if bulk and self.bulk is not None:
            self.bulk.delete(bulk)

    def change_visibility(self, receipt: str, visibility_s: float) -> None:
        if is_bulk_receipt(receipt):
            if self.bulk is not None:
                self.bulk.change_visibility(receipt[len(BULK_RECEIPT_PREFIX):], visibility_s)
            return
        self.interactive.change_visibility(receipt, visibility_s)

    def depth(self) -> QueueDepth:
        """Both lanes together: what the fleet has to serve."""
        interactive, bulk = self.lane_depths()
        return QueueDepth(interactive.visible + bulk.visible,
                          interactive.in_flight + bulk.in_flight)

    def lane_depths(self) -> tuple[QueueDepth, QueueDepth]:
        """(interactive, bulk) depths."""
        bulk = self.bulk.depth() if self.bulk is not None else QueueDepth(0, 0)
        return self.interactive.depth(), bulk

    @staticmethod
    def _split(receipts: Sequence[str]) -> tuple[list[str], list[str]]:
        interactive: list[str] = []
        bulk: list[str] = []
        for receipt in receipts:
            if is_bulk_receipt(receipt):
                bulk.append(receipt[len(BULK_RECEIPT_PREFIX):])
            else:
                interactive.append(receipt)
        return interactive, bulk


def is_bulk_receipt(receipt: str) -> bool:
    """Whether a receipt handed out by ``LanedRequests`` belongs to the bulk lane."""
    return receipt.startswith(BULK_RECEIPT_PREFIX)
