"""Retention: uploads and results live ``retention_days``, then they go.

On AWS, S3 lifecycle rules (set by ``imgrec aws up``) expire ``inputs/``, ``results/``,
``idempotency/`` (the records of idempotency keys, which expire with their job), ``callbacks/``,
``dead-letters/`` and ``batches/``; on one machine the ``Janitor`` does, sweeping the store
every ``janitor_interval_s``. A request id carries its creation time
(``keys.request_id_time``), so the age of a job is known from its id alone: the janitor needs
no timestamps from the store, and a job whose objects are gone answers 410 when it is past
retention (404 when it never existed).

Example::

    janitor = Janitor(store, retention_s=3 * 86400, interval_s=60)
    janitor.start()
    janitor.sweep()  # -> objects deleted by this sweep
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from . import keys
from .errors import ImgrecError, ObjectNotFound
from .ports import ObjectStore

log = logging.getLogger(__name__)

# Swept prefixes and how a key there names its request (a batch: by its first 32 characters,
# for batches/<id>.json and batches/<id>/<part>.json alike).
_SWEPT = (
    (keys.INPUTS_PREFIX, ""),
    (keys.RESULTS_PREFIX, ".json"),
    (keys.CALLBACKS_PREFIX, ".json"),
    (keys.DEAD_LETTERS_PREFIX, ".json"),
    (keys.BATCHES_PREFIX, "*"),
)


def is_expired(request_id: str, retention_s: float, now: float) -> bool:
    """Whether the job with this id is past retention (False for an id without a time)."""
    made = keys.request_id_time(request_id)
    return made is not None and now - made > retention_s


class Janitor:
    """Deletes inputs and results older than ``retention_s``, in a thread (``start``/``stop``)."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        retention_s: float,
        interval_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.retention_s = retention_s
        self.interval_s = interval_s
        self.deleted = 0
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> int:
        """Delete every expired input and result now; return how many objects went."""
        now = self._clock()
        deleted = 0
        for prefix, suffix in _SWEPT:
            for key in list(self.store.list(prefix)):
                request_id = key[len(prefix):]
                if suffix == "*":
                    request_id = request_id[:32]
                elif suffix and request_id.endswith(suffix):
                    request_id = request_id[: -len(suffix)]
                if is_expired(request_id, self.retention_s, now):
                    self.store.delete(key)
                    deleted += 1
        deleted += self._sweep_idempotency(now)
        self.deleted += deleted
        if deleted:
            log.info("janitor: deleted %d object(s) older than %.3g days", deleted,
                     self.retention_s / 86400)
        return deleted

    def _sweep_idempotency(self, now: float) -> int:
        """Idempotency records are named by the key, not the job: read each for its job id."""
        deleted = 0
        for key in list(self.store.list(keys.IDEMPOTENCY_PREFIX)):
            try:
                raw = self.store.get(key)
            except ObjectNotFound:
                continue
            try:
                request_id = str(json.loads(raw)["id"])
            except (ValueError, TypeError, KeyError):
                request_id = ""  # unreadable: of no use to anyone
            if not request_id or is_expired(request_id, self.retention_s, now):
                self.store.delete(key)
                deleted += 1
        return deleted

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="janitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            try:
                self.sweep()
            except ImgrecError as exc:  # the next sweep tries again
                log.warning("janitor: sweep failed: %s", exc)
            if self._stop.wait(self.interval_s):
                return
