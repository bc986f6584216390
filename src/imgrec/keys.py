"""Every object-key prefix and queue name imgrec uses, in one place."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from pathlib import PurePosixPath

from .errors import InvalidKey

INPUTS_PREFIX = "inputs/"
RESULTS_PREFIX = "results/"
HEARTBEATS_PREFIX = "heartbeats/"
AUTOSCALE_PREFIX = "autoscale/"
ESTIMATES_KEY = f"{AUTOSCALE_PREFIX}estimates.json"  # measured worker rate and boot time
WEB_TIERS_PREFIX = "web-tiers/"  # one heartbeat per web-tier process: its reply queue's life
IDEMPOTENCY_PREFIX = "idempotency/"  # one record per Idempotency-Key: job id + image digest
CALLBACKS_PREFIX = "callbacks/"  # a job's webhook and its delivery state; expires with the job
DEAD_LETTERS_PREFIX = "dead-letters/"  # why a request was dead-lettered; expires with the job
BATCHES_PREFIX = "batches/"  # batches/<id>.json: a batch; batches/<id>/<part>.json: its items

REQUEST_QUEUE = "requests"
DEAD_LETTER_QUEUE = "requests-dead"  # shared by both request lanes
BULK_REQUEST_QUEUE = "requests-bulk"  # the lower-priority lane of batch items (lanes.py)
# "_" cannot occur in a stack name, so on SQS "<stack>-replies_*" matches no other stack's queue.
REPLY_QUEUE_PREFIX = "replies_"

# Stores write an object under a temporary name with this suffix, then rename it into place.
PARTIAL_SUFFIX = ".part"

_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def new_request_id(now: float | None = None) -> str:
    """A fresh request id: 32 lowercase hex characters (never derived from client input).

    Laid out as a UUIDv7 (RFC 9562): the first 48 bits are the Unix time in milliseconds, the
    other 74 free bits random. The time tells how old a job is once its objects are gone
    (``request_id_time``): a job past retention answers 410, not 404.
    """
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(secrets.token_bytes(10), "big")
    value = (millis << 80) | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return f"{value:032x}"


def request_id_time(request_id: str) -> float | None:
    """When a request id was made (Unix seconds), or None for an id without a time in it."""
    if not is_request_id(request_id) or request_id[12] != "7" or request_id[16] not in "89ab":
        return None
    return int(request_id[:12], 16) / 1000


def is_request_id(value: str) -> bool:
    return bool(_REQUEST_ID.match(value))


def input_key(request_id: str) -> str:
    return f"{INPUTS_PREFIX}{request_id}"


def result_key(request_id: str) -> str:
    return f"{RESULTS_PREFIX}{request_id}.json"


def idempotency_record_key(key_digest: str) -> str:
    """Where the record of an Idempotency-Key lives; named by the key's sha256, never the key."""
    return f"{IDEMPOTENCY_PREFIX}{key_digest}.json"
def callback_key(request_id: str) -> str:
    return f"{CALLBACKS_PREFIX}{request_id}.json"


def dead_letter_key(request_id: str) -> str:
    return f"{DEAD_LETTERS_PREFIX}{request_id}.json"


def heartbeat_key(worker_id: str) -> str:
    return f"{HEARTBEATS_PREFIX}{worker_id}.json"


def web_tier_key(reply_queue: str) -> str:
    return f"{WEB_TIERS_PREFIX}{reply_queue}.json"


def batch_key(batch_id: str) -> str:
    return f"{BATCHES_PREFIX}{batch_id}.json"


def batch_part_key(batch_id: str, part: str) -> str:
    return f"{BATCHES_PREFIX}{batch_id}/{part}.json"


def reply_queue_name(instance: str | None = None) -> str:
    """The reply queue of one web-tier process; several web tiers can share a request queue."""
    return f"{REPLY_QUEUE_PREFIX}{instance or uuid.uuid4().hex[:12]}"


def validate_key(key: str) -> PurePosixPath:
    """Return the key as a relative path, or raise ``InvalidKey`` if it could leave the root.

    Every ``ObjectStore`` adapter checks keys with this, so they accept the same keys.
    """
    if not key or len(key) > 1024:
        raise InvalidKey("object key must be 1-1024 characters")
    if "\x00" in key or "\\" in key:
        raise InvalidKey(f"object key contains a forbidden character: {key!r}")
    path = PurePosixPath(key)
    if path.is_absolute() or key.startswith("/"):
        raise InvalidKey(f"object key must be relative: {key!r}")
    if any(part in ("..", ".", "") for part in key.split("/")):
        raise InvalidKey(f"object key has an empty, '.' or '..' segment: {key!r}")
    if key.endswith(PARTIAL_SUFFIX):
        raise InvalidKey(f"object key may not end with {PARTIAL_SUFFIX!r}")
    return path
