"""Web tiers heartbeat; a reply queue whose web tier stopped beating is deleted.

Each web-tier process owns one reply queue (``replies-<id>``) and deletes it when it stops. A
killed one cannot, so every web tier writes ``web-tiers/<reply queue>.json`` every
``interval_s`` (written before its queue is created, so no queue exists without a record) and
looks at the others' every few beats: a record older than ``grace_s`` belongs to a web tier
that is gone, and its queue and record are deleted. The same on one machine and on AWS (the
records are small objects in the store; SQS bills nothing for an idle queue, but queues left
behind add up).

Example::

    presence = WebPresence(store, broker, "replies-3f2a", interval_s=5, grace_s=60)
    presence.beat()    # before the queue is created
    presence.start()   # beat, and sweep the others, in a thread
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .. import keys
from ..errors import ImgrecError
from ..ports import ObjectStore, QueueBroker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebTierRecord:
    reply_queue: str
    started_at: float
    updated_at: float
    pid: int
    host: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> WebTierRecord:
        data = json.loads(raw)
        return cls(reply_queue=str(data["reply_queue"]), started_at=float(data["started_at"]),
                   updated_at=float(data["updated_at"]), pid=int(data["pid"]),
                   host=str(data["host"]))


class WebPresence:
    """This web tier's heartbeat, and the removal of reply queues left by dead web tiers."""

    def __init__(
        self,
        store: ObjectStore,
        broker: QueueBroker,
        reply_queue: str,
        *,
        interval_s: float,
        grace_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.broker = broker
        self.reply_queue = reply_queue
        self.interval_s = interval_s
        self.grace_s = grace_s
        self.removed: list[str] = []
        self._clock = clock
        self._started_at = clock()
        self._sweep_every = max(1, int(grace_s / 4 / interval_s))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        record = WebTierRecord(self.reply_queue, self._started_at, self._clock(), os.getpid(),
                               socket.gethostname())
        self.store.put(keys.web_tier_key(self.reply_queue), record.to_json())

    def sweep(self) -> list[str]:
        """Delete the reply queues (and records) of web tiers silent for ``grace_s``."""
        now = self._clock()
        removed: list[str] = []
        for key in list(self.store.list(keys.WEB_TIERS_PREFIX)):
            try:
                record = WebTierRecord.from_json(self.store.get(key))
            except ImgrecError:
                continue  # deleted meanwhile (another web tier swept it), or unreadable now
            except (ValueError, KeyError, TypeError):
                log.warning("removing unreadable web-tier record %s", key)
                self.store.delete(key)
                continue
            if record.reply_queue == self.reply_queue or now - record.updated_at <= self.grace_s:
                continue
            log.info("web tier of reply queue %s silent for %.0f s: deleting its queue",
                     record.reply_queue, now - record.updated_at)
            self.broker.delete_queue(record.reply_queue)
            self.store.delete(key)
            removed.append(record.reply_queue)
        self.removed.extend(removed)
        return removed

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="web-presence", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and remove this web tier's record (its queue is deleted by the caller)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 10)
        try:
            self.store.delete(keys.web_tier_key(self.reply_queue))
        except ImgrecError as exc:
            log.warning("web-tier record not removed (it expires after %.0f s): %s",
                        self.grace_s, exc)

    def _run(self) -> None:
        beats = 0
        while not self._stop.wait(self.interval_s):
            try:
                self.beat()
                beats += 1
                if beats % self._sweep_every == 1 or self._sweep_every == 1:
                    self.sweep()
            except ImgrecError as exc:  # the next beat tries again
                log.warning("web-tier heartbeat or sweep failed: %s", exc)
