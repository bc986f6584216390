"""Batch items from an S3 prefix (``source=s3://bucket/prefix``, AWS backend only).

The web tier lists the prefix, keeps the keys with an image extension, and copies each object
into the stack's inputs (workers read only the stack's buckets, so their role needs nothing
more), ``_PART_ITEMS`` at a time so memory stays bounded. The web tier's role must be allowed
``s3:ListBucket`` and ``s3:GetObject`` on that bucket: ``imgrec aws up`` does not grant it.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from ..batches.record import BatchPart
from ..batches.submit import NewItem, submit_part
from ..chunks import chunks
from ..errors import ImgrecError
from ..ports import Backend, ObjectStore, Queue
from .errors import ApiError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
_SOURCE = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.*)$")
_PART_ITEMS = 100


def parse_source(source: str) -> tuple[str, str]:
    match = _SOURCE.match(source)
    if not match:
        raise ApiError(400, "invalid_source", "source must be s3://bucket/prefix (a bucket "
                       "name and a key prefix, which may be empty).")
    return match.group(1), match.group(2)


def add_s3_source(backend: Backend, bulk: Queue, batch_id: str, source: str, *,
                  part: str, max_items: int, max_file_bytes: int,
                  max_pixels: int) -> list[BatchPart]:
    """Add every image under ``source`` to the batch, as parts ``<part>-<n>``."""
    bucket, prefix = parse_source(source)
    if backend.open_source is None:
        raise ApiError(400, "source_not_supported", "s3:// sources need the aws backend; on "
                       "this one, upload the files (or an archive).")
    store = backend.open_source(bucket)
    try:
        found = [k for k in store.list(prefix) if k.lower().endswith(IMAGE_SUFFIXES)]
    except ImgrecError as exc:
        raise ApiError(400, "source_unreadable", f"Cannot list {source}: {exc}") from exc
    if not found:
        raise ApiError(400, "source_empty", f"No image files (.jpg, .png, ...) under {source}.")
    if len(found) > max_items:
        raise ApiError(413, "too_many_items", f"{source} holds {len(found)} images, over the "
                       f"batch limit of {max_items}.", limit_items=max_items)
    parts = []
    for n, keys_chunk in enumerate(chunks(found, _PART_ITEMS)):
        with ThreadPoolExecutor(max_workers=8) as pool:
            items = list(pool.map(lambda k: _fetch(store, bucket, k, max_file_bytes),
                                  keys_chunk))
        parts.append(submit_part(backend, bulk, batch_id, f"{part}-{n:05d}", items,
                                 max_pixels=max_pixels, room=max_items))
    return parts


def _fetch(store: ObjectStore, bucket: str, key: str, max_file_bytes: int) -> NewItem:
    name = f"s3://{bucket}/{key}"[-255:]
    try:
        data = store.get(key)
    except ImgrecError as exc:
        return NewItem(name, None, "source_unreadable", f"cannot read {name}: {exc}")
    if len(data) > max_file_bytes:
        return NewItem(name, None, "file_too_large",
                       f"The file is over the limit of {max_file_bytes} bytes.")
    return NewItem(name, data)
