"""The reply queues a worker answers on, opened once each, and which ones are gone for now.

A web tier that stopped takes its reply queue with it; its results stay in the store. A worker
then stops trying that queue, but only for ``gone_ttl_s``: a ``QueueNotFound`` can be transient
(SQS is eventually consistent right after a queue is created), and a queue remembered as gone
for good would silence its web tier for good. At most ``max_queues`` are remembered (the
oldest go first): every web-tier restart adds a name.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import PermanentError, QueueNotFound
from ..ports import Queue, QueueBroker

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    queue: Queue | None  # None: gone, until ``retry_at``
    retry_at: float = 0.0


class ReplyQueues:
    """Sends replies by queue name; a missing queue is skipped for ``gone_ttl_s`` seconds.

    Example::

        replies = ReplyQueues(broker)
        replies.send("replies-3f2a", [reply.encode()])  # False if the queue is gone
    """

    def __init__(
        self,
        broker: QueueBroker,
        *,
        gone_ttl_s: float = 30.0,
        max_queues: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.broker = broker
        self.gone_ttl_s = gone_ttl_s
        self.max_queues = max_queues
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        """How many queue names are remembered (open or gone)."""
        return len(self._entries)

    def send(self, name: str, bodies: Sequence[str]) -> bool:
        """Send the replies; False if the queue is gone (or refuses us): the store has them.

        A retryable failure (the queue service is unreachable) is raised: the batch is then
        not deleted and its replies are sent again on redelivery.
        """
        queue = self._open(name)
        if queue is None:
            return False
        try:
            queue.send(bodies)
        except QueueNotFound:
            self._gone(name, "is gone")
            return False
        except PermanentError as exc:  # e.g. access denied: one web tier's problem, not ours
            self._gone(name, f"refused the replies: {exc}")
            return False
        return True

    def _open(self, name: str) -> Queue | None:
        entry = self._entries.get(name)
        if entry is not None and (entry.queue is not None or self._clock() < entry.retry_at):
            self._entries.move_to_end(name)
            return entry.queue
        try:
            queue = self.broker.open(name, create=False)
        except QueueNotFound:
            self._gone(name, "is gone")
            return None
        except PermanentError as exc:
            self._gone(name, f"cannot be opened: {exc}")
            return None
        self._remember(name, _Entry(queue))
        return queue

    def _gone(self, name: str, why: str) -> None:
        log.info("reply queue %s %s; results stay in the store (retrying it in %.0f s)",
                 name, why, self.gone_ttl_s)
        self._remember(name, _Entry(None, self._clock() + self.gone_ttl_s))

    def _remember(self, name: str, entry: _Entry) -> None:
        self._entries[name] = entry
        self._entries.move_to_end(name)
        while len(self._entries) > self.max_queues:
            self._entries.popitem(last=False)
