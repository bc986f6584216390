"""The autoscaler's memory in the backend's store: measured worker rate and boot time per kind.

``EstimateMemory`` reads ``autoscale/estimates.json`` once, and writes it back at most every
``save_every_s`` when the controller has measured something; an unreadable document is logged
and replaced, never fatal. The estimates themselves (keys, smoothing, format) are the pure
``imgrec.autoscale.estimates``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .. import keys
from ..errors import ImgrecError, ObjectNotFound
from ..ports import ObjectStore
from .estimates import Estimate, Estimates, EstimatesError

log = logging.getLogger(__name__)


class EstimateMemory:
    """Estimates of one model's workers, kept in ``store`` across restarts."""

    def __init__(self, store: ObjectStore, model: str, *, save_every_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.model = store, model
        self.save_every_s = save_every_s
        self._clock = clock
        self._saved_at: float | None = None
        self._estimates = self._load()

    def _load(self) -> Estimates:
        try:
            return Estimates.from_json(self.store.get(keys.ESTIMATES_KEY))
        except ObjectNotFound:
            return Estimates()
        except (EstimatesError, ImgrecError) as exc:
            log.warning("autoscaler estimates not read, starting afresh: %s", exc)
            return Estimates()

    def estimate(self, kind: str) -> Estimate:
        """What is known about this model's workers of ``kind`` (``local``, ``c7i.large``)."""
        return self._estimates.get(self.model, kind)

    def remember(self, kind: str, *, rate_per_worker: float | None,
                 boot_s: float | None) -> bool:
        """Fold in measured values and write them, at most every ``save_every_s``."""
        if rate_per_worker is None and boot_s is None:
            return False
        now = self._clock()
        if self._saved_at is not None and now - self._saved_at < self.save_every_s:
            return False
        self._estimates = self._estimates.updated(self.model, kind,
                                                  rate_per_worker=rate_per_worker, boot_s=boot_s)
        self._saved_at = now
        try:
            self.store.put(keys.ESTIMATES_KEY, self._estimates.to_json().encode())
        except ImgrecError as exc:
            log.warning("autoscaler estimates not saved: %s", exc)
            return False
        return True
