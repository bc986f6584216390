"""A batch's progress and results, read from the store with a cache of what cannot change.

Parts and results are immutable once written, so each web-tier process reads each at most once
(``BatchReader`` keeps them for the ``cached_batches`` most recently read batches). Which items
have a result is found by listing ``results/`` under the longest prefix the batch's pending
ids share: request ids start with their creation time, so one listing covers the batch (and at
most the other requests made in the same minutes), not one read per pending item.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from .. import keys
from ..errors import ObjectNotFound
from ..messages import ClassifyResult, MessageError
from ..ports import ObjectStore
from .record import BatchItem, BatchPart, BatchRecord

ItemState = Literal["queued", "done", "failed"]
STATES: tuple[ItemState, ...] = ("queued", "done", "failed")


class BatchNotFound(Exception):
    pass


@dataclass
class _Cached:
    record: BatchRecord
    parts: dict[str, BatchPart] = field(default_factory=dict)
    results: dict[str, ClassifyResult] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchView:
    """A batch as read now: its items in submission order and the results found so far."""

    record: BatchRecord
    items: tuple[BatchItem, ...]
    results: dict[str, ClassifyResult]

    def state(self, item: BatchItem) -> ItemState:
        result = self.results.get(item.request_id)
        if result is None:
            return "queued"
        return "done" if result.ok else "failed"

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(STATES, 0)
        for item in self.items:
            counts[self.state(item)] += 1
        return counts

    @property
    def finished(self) -> bool:
        return bool(self.items) and all(i.request_id in self.results for i in self.items)

    def rows(self) -> Iterator[tuple[BatchItem, ItemState, ClassifyResult | None]]:
        for item in self.items:
            yield item, self.state(item), self.results.get(item.request_id)


class BatchReader:
    """Reads batches from ``store``; thread-safe (routes call it from the thread pool)."""

    def __init__(self, store: ObjectStore, *, cached_batches: int = 32) -> None:
        self.store = store
        self.cached_batches = cached_batches
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, batch_id: str) -> BatchView:
        cached = self._entry(batch_id)
        self._read_parts(batch_id, cached)
        items = tuple(i for name in sorted(cached.parts) for i in cached.parts[name].items)
        self._read_results(cached, [i.request_id for i in items
                                    if i.request_id not in cached.results])
        with self._lock:
            return BatchView(cached.record, items, dict(cached.results))

    def _entry(self, batch_id: str) -> _Cached:
        with self._lock:
            cached = self._cache.get(batch_id)
            if cached is not None:
                self._cache.move_to_end(batch_id)
                return cached
        try:
            record = BatchRecord.from_json(self.store.get(keys.batch_key(batch_id)))
        except (ObjectNotFound, MessageError) as exc:
            raise BatchNotFound(batch_id) from exc
        with self._lock:
            cached = self._cache.setdefault(batch_id, _Cached(record))
            while len(self._cache) > self.cached_batches:
                self._cache.popitem(last=False)
        return cached

    def _read_parts(self, batch_id: str, cached: _Cached) -> None:
        prefix = keys.batch_part_key(batch_id, "x")[: -len("x.json")]
        for key in list(self.store.list(prefix)):
            name = key[len(prefix):].removesuffix(".json")
            if name in cached.parts:
                continue
            try:
                part = BatchPart.from_json(self.store.get(key))
            except (ObjectNotFound, MessageError):
                continue
            with self._lock:
                cached.parts[name] = part

    def _read_results(self, cached: _Cached, pending: list[str]) -> None:
        if not pending:
            return
        prefix = keys.RESULTS_PREFIX + os.path.commonprefix([min(pending), max(pending)])
        wanted = set(pending)
        for key in list(self.store.list(prefix)):
            request_id = key[len(keys.RESULTS_PREFIX):].removesuffix(".json")
            if request_id not in wanted:
                continue
            try:
                result = ClassifyResult.from_json(self.store.get(key))
            except (ObjectNotFound, MessageError):
                continue
            with self._lock:
                cached.results[request_id] = result
