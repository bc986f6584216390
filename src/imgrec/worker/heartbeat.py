"""Workers report their state as small JSON objects in the store: ``heartbeats/<worker_id>.json``.

The fleet and the autoscaler read them to tell starting, ready, busy and draining workers apart,
the same way on one machine and on EC2. Busy/ready flips are written at most every
``min_interval_s`` so a busy worker does not write once per batch; other changes at once.

A worker supervised by a local fleet also lists the receipts of the requests it holds
(``receipts``), written before it starts on them: when the fleet sees the process die it makes
those requests visible again at once instead of after the visibility timeout.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import keys
from ..errors import ImgrecError
from ..ports import ObjectStore, WorkerState

log = logging.getLogger(__name__)
_FLIP_STATES = {WorkerState.READY, WorkerState.BUSY}


@dataclass
class HeartbeatRecord:
    worker_id: str
    state: WorkerState
    started_at: float
    updated_at: float
    idle_since: float | None
    processed: int
    pid: int
    host: str
    receipts: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps({**self.__dict__, "state": self.state.value}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> HeartbeatRecord:
        data = json.loads(raw)
        data["state"] = WorkerState(data["state"])
        return cls(**data)


class Heartbeat:
    """Writes one worker's heartbeat; never raises (a missed beat must not stop the worker)."""

    def __init__(
        self,
        store: ObjectStore,
        worker_id: str,
        *,
        interval_s: float = 2.0,
        min_interval_s: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clock = clock
        self.interval_s = interval_s
        self.min_interval_s = min_interval_s
        now = clock()
        self.record = HeartbeatRecord(
            worker_id=worker_id, state=WorkerState.STARTING, started_at=now, updated_at=0.0,
            idle_since=None, processed=0, pid=os.getpid(), host=socket.gethostname(),
        )
        self._written_state: WorkerState | None = None
        self._lock = threading.Lock()

    def beat(self, state: WorkerState | None = None, *, processed: int | None = None,
             receipts: list[str] | None = None) -> None:
        """Record ``state`` (None: unchanged); write it when it changed or a beat is due.

        New ``receipts`` are always written at once: the fleet must see them before the
        worker starts on the requests.
        """
        with self._lock:
            self._beat(state or self.record.state, processed, receipts)

    def _beat(self, state: WorkerState, processed: int | None,
              receipts: list[str] | None) -> None:
        now = self._clock()
        rec = self.record
        changed = state != rec.state
        if processed is not None:
            rec.processed = processed
        if changed:
            rec.idle_since = now if state == WorkerState.READY else None
        due = now - rec.updated_at >= self.interval_s
        flip_too_soon = (
            changed and state in _FLIP_STATES and rec.state in _FLIP_STATES
            and now - rec.updated_at < self.min_interval_s
        )
        # A flip held back by min_interval_s is written at the next beat after it, not 2 s later.
        deferred = state != self._written_state and now - rec.updated_at >= self.min_interval_s
        rec.state = state
        held_changed = receipts is not None and receipts != rec.receipts
        if receipts is not None:
            rec.receipts = list(receipts)
        if (changed and not flip_too_soon) or due or deferred or held_changed:
            rec.updated_at = now
            self._written_state = state
            try:
                self._store.put(keys.heartbeat_key(rec.worker_id), rec.to_json())
            except ImgrecError as exc:
                log.warning("heartbeat not written: %s", exc)


def read_heartbeats(store: ObjectStore) -> dict[str, HeartbeatRecord]:
    """Every worker's last heartbeat, by worker id; unreadable ones are skipped."""
    records: dict[str, HeartbeatRecord] = {}
    for key in store.list(keys.HEARTBEATS_PREFIX):
        try:
            rec = HeartbeatRecord.from_json(store.get(key))
        except (ImgrecError, ValueError, KeyError, TypeError):
            continue
        records[rec.worker_id] = rec
    return records
