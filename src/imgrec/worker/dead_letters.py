"""Answer requests that reached the dead-letter queue, so their clients are not left waiting.

A request lands there after ``max_receives`` deliveries without being deleted: the workers that
took it crashed or were killed each time. The responder stores an error result (unless a
result exists after all) and a dead-letter record with the reason (``imgrec.dead_letters``:
list, replay, purge), replies to the waiting web tier and deletes the dead letter.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from .. import keys
from ..dead_letters import FAILED_CODE, record_dead_letter
from ..errors import ImgrecError, ObjectNotFound, QueueNotFound
from ..messages import ClassifyRequest, ClassifyResult, MessageError, Reply
from ..ports import Backend

log = logging.getLogger(__name__)
_BATCH = 10


class DeadLetterResponder:
    """Drains the dead-letter queue in a background thread (``start``/``stop``) or on demand."""

    def __init__(self, backend: Backend, *, poll_wait_s: float = 1.0) -> None:
        self.backend = backend
        self.poll_wait_s = poll_wait_s
        self.answered = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dead-letters", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_wait_s + 5)

    def handle_once(self, wait_s: float = 0.0) -> int:
        """Answer up to one batch of dead letters; return how many were handled."""
        messages = self.backend.dead_letters.receive(_BATCH, wait_s=wait_s, visibility_s=30)
        done: list[str] = []
        for msg in messages:
            try:
                request = ClassifyRequest.decode(msg.body)
            except MessageError as exc:
                log.error("dropping malformed dead letter: %s", exc)
                done.append(msg.receipt)
                continue
            # The dead-letter queue's own receive counts too (both adapters keep the count).
            self._answer(request, receive_count=max(1, msg.receive_count - 1))
            done.append(msg.receipt)
        if done:
            self.backend.dead_letters.delete(done)
        self.answered += len(done)
        return len(done)

    def _answer(self, request: ClassifyRequest, *, receive_count: int) -> None:
        store = self.backend.store
        key = keys.result_key(request.request_id)
        try:
            result = ClassifyResult.from_json(store.get(key))
        except (ObjectNotFound, MessageError):
            letter = record_dead_letter(store, request, receive_count)
            result = ClassifyResult.failure(
                request.request_id, FAILED_CODE,
                "The request failed repeatedly and was set aside (see `imgrec dlq show "
                f"{request.request_id}`). {letter.reason}",
            )
            store.put(key, result.to_json())
        log.warning("dead-lettered request %s answered with %s", request.request_id,
                    result.error_code or "its stored result")
        if request.reply_to:
            with contextlib.suppress(QueueNotFound):
                self.backend.broker.open(request.reply_to, create=False).send(
                    [Reply(request.request_id, result).encode()]
                )

    def _run(self) -> None:
        # A short look, then a pause while the queue is empty, rather than a long poll: on the
        # embedded backend a long-polling receiver wakes at every commit of any process (the
        # workers' and the web tier's, a few hundred a second under load) to look at a queue
        # that is nearly always empty. Dead letters are answered within ``poll_wait_s``, with
        # as many receives as a long poll of that length would make on SQS.
        while not self._stop.is_set():
            try:
                handled = self.handle_once(wait_s=0)
            except ImgrecError as exc:
                log.warning("dead-letter queue not readable: %s", exc)
                handled = 0
            if not handled:
                self._stop.wait(self.poll_wait_s)
