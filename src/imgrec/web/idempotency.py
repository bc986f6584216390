"""Idempotency keys: the same ``Idempotency-Key`` and image give the same job, classified once.

A key's record, ``idempotency/<sha256 of the key>.json`` in the backend's object store (so every
web tier sees it), holds the job id and the sha256 of the image. It is created with
``put_if_absent``: of two web tiers racing on one key exactly one makes the job, the other
answers with that job. The record expires with its job (the job id tells its age): past
retention the key is free again, the janitor or the S3 lifecycle rule removes the record.

Keys are global to the service (not per client): use a fresh random value (a UUID) per logical
request, and reuse it only to retry that request.

Example::

    keys = IdempotencyKeys(store, retention_s=3 * 86400)
    record = keys.find("order-42")           # None: the key is new
    existing = keys.claim("order-42", IdempotencyRecord(job_id, digest))  # None: claimed
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass

from .. import keys
from ..errors import ImgrecError, ObjectNotFound
from ..ports import ObjectStore
from ..retention import is_expired
from .errors import ApiError

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
_KEY = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$")  # printable ASCII, no edge spaces


def validate_key(value: str) -> str:
    """The key as given, or a 400 that says what a key may be."""
    if not value or len(value) > MAX_KEY_CHARS or not _KEY.match(value):
        raise ApiError(
            400, "invalid_idempotency_key",
            f"The {HEADER} header must be 1-{MAX_KEY_CHARS} printable ASCII characters "
            "(a UUID is a good choice).", limit_chars=MAX_KEY_CHARS)
    return value


def image_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class IdempotencyRecord:
    """The job an idempotency key made, and the sha256 of the image it was made for."""

    request_id: str
    image_sha256: str
    created_at: float = 0.0

    def to_json(self) -> bytes:
        return json.dumps({"v": 1, "id": self.request_id, "sha256": self.image_sha256,
                           "t": round(self.created_at, 3)}, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> IdempotencyRecord | None:
        try:
            data = json.loads(raw)
            return cls(str(data["id"]), str(data["sha256"]), float(data.get("t", 0.0)))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def record_key(idempotency_key: str) -> str:
    return keys.idempotency_record_key(hashlib.sha256(idempotency_key.encode()).hexdigest())


class IdempotencyKeys:
    """Finds, claims and releases the records of idempotency keys (blocking calls)."""

    def __init__(self, store: ObjectStore, *, retention_s: float) -> None:
        self.store = store
        self.retention_s = retention_s

    def find(self, idempotency_key: str) -> IdempotencyRecord | None:
        """The live record of the key, or None (never used, or its job is past retention)."""
        key = record_key(idempotency_key)
        try:
            raw = self.store.get(key)
        except ObjectNotFound:
            return None
        record = IdempotencyRecord.from_json(raw)
        if record is None or is_expired(record.request_id, self.retention_s, time.time()):
            self.store.delete(key)  # expired with its job (or unreadable): the key is free
            return None
        return record

    def claim(self, idempotency_key: str, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """Make ``record`` the key's record; None if it now is, else the record that won."""
        key = record_key(idempotency_key)
        for _attempt in range(3):
            if self.store.put_if_absent(key, record.to_json()):
                return None
            existing = self.find(idempotency_key)
            if existing is not None:
                return existing
            # The record was deleted between the two calls (expired): claim again.
        raise ApiError(409, "idempotency_key_busy",
                       f"The {HEADER} is being claimed and released by other requests at this "
                       "moment; retry shortly.")

    def release(self, idempotency_key: str) -> None:
        """Remove the key's record (its job was never queued); failures are only logged."""
        try:
            self.store.delete(record_key(idempotency_key))
        except ImgrecError as exc:
            log.warning("idempotency record not removed (it expires with retention): %s", exc)


def check_same_image(record: IdempotencyRecord, digest: str) -> None:
    """A 409 if the key was used for another image."""
    if record.image_sha256 != digest:
        raise ApiError(
            409, "idempotency_key_reused",
            f"This {HEADER} was already used for a different image (job {record.request_id}). "
            "Use a new key for a new image; reuse a key only to retry the same request.",
            id=record.request_id)

