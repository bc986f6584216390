"""Route reply messages from this web tier's reply queue to the requests waiting for them.

One thread long-polls the reply queue and resolves an ``asyncio.Future`` per request id on the
event loop. Each request is resolved once: a duplicate reply (a redelivered request answered
again; counted in ``duplicates``) or a reply nobody waits for any more (``unclaimed``) is
deleted and ignored.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from .. import keys
from ..errors import ImgrecError, ObjectNotFound, QueueNotFound, RetryableError
from ..messages import ClassifyResult, MessageError, Reply
from ..ports import ObjectStore, Queue

log = logging.getLogger(__name__)
_RECEIVE_BATCH = 10
_BACKOFF_S = 1.0
_MAX_TRACKED = 100_000

AnswerHook = Callable[[ClassifyResult, float], None]


class ReplyDispatcher:
    """Delivers replies to waiters registered with ``expect(request_id)``."""

    def __init__(
        self, queue: Queue, store: ObjectStore, *, poll_wait_s: float = 1.0,
        on_tracked_answer: AnswerHook | None = None,
        reopen: Callable[[], Queue] | None = None,
    ) -> None:
        self.queue = queue
        # Our queue can vanish (deleted as orphaned while this web tier could not beat, e.g.
        # during an outage longer than the grace period); ``reopen`` creates it again.
        self.reopen = reopen
        self.store = store
        self.poll_wait_s = poll_wait_s
        self.on_tracked_answer = on_tracked_answer
        # Called (in the dispatcher's thread) with the id of every reply received here, once
        # per reply: wakes the job's event streams and its webhook.
        self.on_answer: Callable[[str], None] | None = None
        # Asynchronous jobs nobody waits for: their replies only feed the throughput figures.
        self._tracked: OrderedDict[str, float] = OrderedDict()
        # Requests already answered, so that a second reply for one (a redelivered request
        # answered again) is counted as a duplicate; the most recent ``_MAX_TRACKED`` are kept.
        self._answered: OrderedDict[str, None] = OrderedDict()
        self.unclaimed = 0
        self.duplicates = 0
        self._waiters: dict[str, asyncio.Future[ClassifyResult]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Resolve futures on ``loop`` (``start`` does this; ``dispatch_once`` callers too)."""
        self._loop = loop

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.bind(loop)
        self._thread = threading.Thread(target=self._run, name="reply-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_wait_s + 5)

    def expect(self, request_id: str) -> asyncio.Future[ClassifyResult]:
        """A future that the reply for ``request_id`` resolves; call before sending the request."""
        assert self._loop is not None, "dispatcher not started"
        future: asyncio.Future[ClassifyResult] = self._loop.create_future()
        with self._lock:
            self._waiters[request_id] = future
        return future

    def track(self, request_id: str) -> None:
        """Note when an asynchronous job was submitted; its reply reports the job's latency."""
        with self._lock:
            self._answered.pop(request_id, None)  # tracked again (a replay): a new answer
            self._tracked[request_id] = time.monotonic()
            if len(self._tracked) > _MAX_TRACKED:
                self._tracked.popitem(last=False)

    def forget(self, request_id: str) -> None:
        """Stop waiting (the request timed out or its client went away)."""
        with self._lock:
            self._waiters.pop(request_id, None)

    def answer_locally(self, result: ClassifyResult) -> bool:
        """Resolve this web tier's waiter for ``result``'s request at once, if there is one.

        For outcomes decided here rather than by a worker (a cancel); the worker's later reply
        for the request then counts as a duplicate.
        """
        with self._lock:
            future = self._waiters.pop(result.request_id, None)
            if future is not None:
                self._note_answered(result.request_id)
        if future is None:
            return False
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_resolve, future, result)
        return True

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiters)

    def dispatch_once(self, wait_s: float = 0.0) -> int:
        """Receive one batch of replies, resolve their waiters, delete them; return how many.

        The dispatcher's thread does this in a loop; a test can drive it step by step.
        """
        messages = self.queue.receive(_RECEIVE_BATCH, wait_s=wait_s)
        resolved: list[tuple[asyncio.Future[ClassifyResult], ClassifyResult]] = []
        for msg in messages:
            self._dispatch(msg.body, resolved)
        if resolved:  # one wake-up of the event loop for the whole batch
            assert self._loop is not None
            self._loop.call_soon_threadsafe(_resolve_all, resolved)
        if messages:
            try:
                self.queue.delete([m.receipt for m in messages])
            except ImgrecError as exc:
                log.warning("replies not deleted (they will be ignored when seen again): %s", exc)
        return len(messages)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.dispatch_once(self.poll_wait_s)
            except RetryableError as exc:
                log.warning("reply queue unreachable: %s", exc)
                self._stop.wait(_BACKOFF_S)
            except QueueNotFound as exc:
                self._reopen(exc)
            except ImgrecError as exc:
                log.error("reply queue failed: %s", exc)
                self._stop.wait(_BACKOFF_S)

    def _reopen(self, exc: QueueNotFound) -> None:
        log.error("reply queue %s is gone (%s); creating it again", self.queue.name, exc)
        if self.reopen is not None:
            try:
                self.queue = self.reopen()
                return
            except ImgrecError as again:
                log.warning("reply queue not created again yet: %s", again)
        self._stop.wait(_BACKOFF_S)

    def _dispatch(self, body: str,
                  resolved: list[tuple[asyncio.Future[ClassifyResult], ClassifyResult]]) -> None:
        try:
            reply = Reply.decode(body)
        except MessageError as exc:
            log.error("ignoring malformed reply: %s", exc)
            return
        if self.on_answer is not None:  # duplicates too: a replayed job is answered again
            self.on_answer(reply.request_id)
        with self._lock:
            if reply.request_id in self._answered:
                self.duplicates += 1
                return
            future = self._waiters.pop(reply.request_id, None)
            submitted = self._tracked.pop(reply.request_id, None) if future is None else None
            if future is not None or submitted is not None:
                self._note_answered(reply.request_id)
        if future is None:
            if submitted is not None and reply.result is not None and self.on_tracked_answer:
                self.on_tracked_answer(reply.result, time.monotonic() - submitted)
            else:
                self.unclaimed += 1
            return
        result = reply.result or self._fetch(reply.request_id)
        if result is None:
            with self._lock:
                self._answered.pop(reply.request_id, None)
                self._waiters[reply.request_id] = future
            return
        resolved.append((future, result))

    def _note_answered(self, request_id: str) -> None:
        self._answered[request_id] = None
        if len(self._answered) > _MAX_TRACKED:
            self._answered.popitem(last=False)

    def _fetch(self, request_id: str) -> ClassifyResult | None:
        try:
            return ClassifyResult.from_json(self.store.get(keys.result_key(request_id)))
        except (ObjectNotFound, MessageError, ImgrecError) as exc:
            log.warning("result of %s not readable yet: %s", request_id, exc)
            return None


def _resolve(future: asyncio.Future[ClassifyResult], result: ClassifyResult) -> None:
    if not future.done():
        future.set_result(result)


def _resolve_all(
    resolved: list[tuple[asyncio.Future[ClassifyResult], ClassifyResult]]
) -> None:
    for future, result in resolved:
        _resolve(future, result)
