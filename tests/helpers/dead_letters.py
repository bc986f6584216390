"""Let a request really die: queued, taken once and never finished, then dead-lettered."""

from __future__ import annotations

import time

from imgrec import keys
from imgrec.messages import ClassifyRequest
from imgrec.ports import Backend, Message


def kill_request(backend: Backend, image: bytes = b"image bytes") -> ClassifyRequest:
    """Queue a request, take it once without finishing it, and let the queue dead-letter it.

    The backend's request queue must have ``max_receives`` 1.
    """
    request_id = keys.new_request_id()
    request = ClassifyRequest(request_id, keys.input_key(request_id), None, time.time())
    backend.store.put(request.key, image)
    backend.requests.send([request.encode()])
    deadline = time.monotonic() + 10
    taken: list[Message] = []
    while not taken:  # SQS's receive may come back empty even with a message waiting
        assert time.monotonic() < deadline, "the request was never received"
        taken = backend.requests.receive(1, wait_s=1, visibility_s=0)
    assert backend.requests.receive(1, wait_s=0.5) == []  # moved to the dead-letter queue
    return request
