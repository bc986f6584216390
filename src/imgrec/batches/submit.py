"""Submitting to a batch: store each image, queue it on the bulk lane, then write the part.

Items are checked like single uploads (size, an image header within the pixel limit). An item
that fails a check gets its error result at once and is not queued, so one bad file does not
fail the batch. The part is written last: a part that exists lists only queued (or answered)
items, and resending it (same ``part`` name) returns it unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import keys
from ..chunks import chunks
from ..errors import ImageError, ObjectNotFound
from ..messages import ClassifyRequest, ClassifyResult
from ..model.decode import probe_image
from ..ports import Backend, Queue
from .record import BatchItem, BatchPart, BatchRecord

INTAKE_GROUP = 10


@dataclass(frozen=True)
class NewItem:
    """An image to add: its bytes, or why it was refused before reaching the batch."""

    name: str
    data: bytes | None
    error_code: str | None = None
    error: str | None = None


class BatchFull(Exception):
    """Adding the items would take the batch past ``max_batch_items``."""


def create_batch(backend: Backend) -> BatchRecord:
    """A new, empty batch (its id carries its creation time, for retention)."""
    record = BatchRecord(keys.new_request_id(), time.time())
    backend.store.put(keys.batch_key(record.batch_id), record.to_json())
    return record


def existing_part(backend: Backend, batch_id: str, part: str) -> BatchPart | None:
    try:
        return BatchPart.from_json(backend.store.get(keys.batch_part_key(batch_id, part)))
    except ObjectNotFound:
        return None


def submit_part(
    backend: Backend, bulk: Queue, batch_id: str, part: str, items: Sequence[NewItem], *,
    max_pixels: int, room: int, before_group: Callable[[], None] | None = None,
) -> BatchPart:
    """Store, queue and record ``items`` as the part ``part`` (``room``: items still allowed).

    The items are stored and queued ``INTAKE_GROUP`` at a time, ``before_group`` called before
    each group (the web tier waits there while interactive requests are in progress).
    """
    found = existing_part(backend, batch_id, part)
    if found is not None:
        return found
    if len(items) > room:
        raise BatchFull(f"{len(items)} more items would pass the batch limit ({room} left)")
    checked = [_checked(item, max_pixels) for item in items]
    ids = [keys.new_request_id() for _ in checked]
    now = time.time()
    queued = [(rid, item) for rid, item in zip(ids, checked, strict=True) if item.data is not None]
    refused = [(rid, item) for rid, item in zip(ids, checked, strict=True) if item.data is None]

    for group in chunks(queued, INTAKE_GROUP):
        if before_group is not None:
            before_group()
        backend.store.put_many([(keys.input_key(rid), item.data) for rid, item in group
                                if item.data is not None])
        bulk.send([ClassifyRequest(rid, keys.input_key(rid), None, now).encode()
                   for rid, _ in group])
    backend.store.put_many([
        (keys.result_key(rid), ClassifyResult.failure(rid, item.error_code or "rejected",
                                                      item.error or "").to_json())
        for rid, item in refused])
    record = BatchPart(part, tuple(BatchItem(rid, item.name)
                                   for rid, item in zip(ids, checked, strict=True)))
    backend.store.put(keys.batch_part_key(batch_id, part), record.to_json())
    return record


def _checked(item: NewItem, max_pixels: int) -> NewItem:
    if item.data is None:
        return item
    try:
        probe_image(item.data, max_pixels=max_pixels)
    except ImageError as exc:
        return NewItem(item.name, None, exc.code, exc.message)
    return item
