"""Every object-key prefix and queue name imgrec uses, in one place."""

from __future__ import annotations

import re
import uuid

INPUTS_PREFIX = "inputs/"
RESULTS_PREFIX = "results/"
HEARTBEATS_PREFIX = "heartbeats/"

REQUEST_QUEUE = "requests"
DEAD_LETTER_QUEUE = "requests-dead"
REPLY_QUEUE_PREFIX = "replies-"

_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def new_request_id() -> str:
    """A fresh request id: 32 lowercase hex characters (never derived from client input)."""
    return uuid.uuid4().hex


def is_request_id(value: str) -> bool:
    return bool(_REQUEST_ID.match(value))


def input_key(request_id: str) -> str:
    return f"{INPUTS_PREFIX}{request_id}"


def result_key(request_id: str) -> str:
    return f"{RESULTS_PREFIX}{request_id}.json"


def heartbeat_key(worker_id: str) -> str:
    return f"{HEARTBEATS_PREFIX}{worker_id}.json"


def reply_queue_name(instance: str | None = None) -> str:
    """The reply queue of one web-tier process; several web tiers can share a request queue."""
    return f"{REPLY_QUEUE_PREFIX}{instance or uuid.uuid4().hex[:12]}"
