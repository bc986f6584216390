"""Deliver webhooks: POST each finished job's document to its callback URL, signed, retried.

The web tier that accepted a job delivers its webhook: ``register`` stores the record
``callbacks/<id>.json`` (pending), the reply dispatcher ``poke``s the sender when the answer
arrives, and a thread POSTs it. A failed try (no 2xx, a timeout, a refused connection) is
retried after ``backoff_s``, 2x, 4x... up to ``max_attempts`` tries; the record says how it went.

At start and every ``sweep_s`` the sender also scans the pending records: its own (an answer
that reached another web tier, or the CLI's replay, has no reply here) and those of a web tier
that is gone (no heartbeat record: stopped, or swept after its grace period), so a restart does
not lose deliveries. Records seen final are remembered, so a sweep lists ``callbacks/`` but
reads only the records that may still be pending.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable

import httpx

from .. import __version__, keys
from ..errors import ImgrecError, ObjectNotFound
from ..messages import ClassifyResult, MessageError
from ..ports import ObjectStore
from .job_view import webhook_body
from .webhooks import (
    ATTEMPT_HEADER,
    JOB_HEADER,
    SIGNATURE_HEADER,
    CallbackRecord,
    CallbackRefused,
    check_callback_url,
    rearm_callback,
    signature_header,
)

log = logging.getLogger(__name__)
_FINAL_TTL_S = 3600.0


class WebhookSender:
    """Delivers the webhooks of jobs in a background thread (``start``/``stop``)."""

    def __init__(
        self, store: ObjectStore, secret: bytes, *, owner: str, allow_private: bool,
        max_attempts: int, backoff_s: float, timeout_s: float, sweep_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._secret = secret
        self.owner = owner
        self.allow_private = allow_private
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.sweep_s = sweep_s
        self.delivered = 0
        self._clock = clock
        self._due: list[tuple[float, str]] = []
        self._scheduled: dict[str, float] = {}  # request id -> its one live entry in _due
        # Delivered or failed when last read: sweeps skip them for _FINAL_TTL_S (a replay may
        # make one pending again; its answer pokes its web tier, a later sweep catches the rest).
        self._final: dict[str, float] = {}
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False,
                                    headers={"User-Agent": f"imgrec/{__version__} webhook"})

    def register(self, request_id: str, url: str) -> None:
        """Store the pending record (blocking), then check at once: the job may be done."""
        record = CallbackRecord(url=url, owner=self.owner)
        self.store.put(keys.callback_key(request_id), record.to_json())
        self._final.pop(request_id, None)
        self.poke(request_id)

    def rearm(self, request_id: str) -> None:
        """A replayed job's webhook goes out again, from here, with its new outcome."""
        if rearm_callback(self.store, request_id, self.owner):
            self._final.pop(request_id, None)

    def record(self, request_id: str) -> CallbackRecord | None:
        try:
            return CallbackRecord.from_json(self.store.get(keys.callback_key(request_id)))
        except ObjectNotFound:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("unreadable webhook record of %s: %s", request_id, exc)
            return None

    def poke(self, request_id: str, at: float | None = None) -> None:
        """Try ``request_id``'s delivery now (or at ``at``); thread-safe, cheap if it has none."""
        when = self._clock() if at is None else at
        with self._wake:
            if self._scheduled.get(request_id, float("inf")) <= when:
                return
            self._scheduled[request_id] = when
            heapq.heappush(self._due, (when, request_id))
            self._wake.notify()

    def attempt(self, request_id: str) -> CallbackRecord | None:
        """One delivery try if the job has a pending webhook and an answer; the new record."""
        record = self.record(request_id)
        if record is None or record.state != "pending":
            return record
        now = self._clock()
        if record.next_attempt_at is not None and record.next_attempt_at > now:
            self.poke(request_id, at=record.next_attempt_at)
            return record
        try:
            result = ClassifyResult.from_json(self.store.get(keys.result_key(request_id)))
        except (ObjectNotFound, MessageError):
            return record  # not answered yet: the reply (or a sweep) pokes again
        body = webhook_body(request_id, result)
        status, error = self._post(record, request_id, body)
        now = self._clock()
        if error is None:
            record = record.succeeded(status or 0, now)
            self.delivered += 1
        else:
            record = record.failed_once(status, error, now, max_attempts=self.max_attempts,
                                        base_s=self.backoff_s)
            log.info("webhook of %s: try %d failed (%s)", request_id, record.attempts, error)
        self.store.put(keys.callback_key(request_id), record.to_json())
        if record.state != "pending":
            self._final[request_id] = now
        if record.state == "pending" and record.next_attempt_at is not None:
            self.poke(request_id, at=record.next_attempt_at)
        return record

    def _post(self, record: CallbackRecord, request_id: str,
              body: bytes) -> tuple[int | None, str | None]:
        try:  # again at delivery: the name may resolve elsewhere by now
            check_callback_url(record.url, allow_private=self.allow_private)
        except CallbackRefused as exc:
            return None, str(exc)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(self._secret, int(self._clock()), body),
            JOB_HEADER: request_id,
            ATTEMPT_HEADER: str(record.attempts + 1),
        }
        try:
            response = self._client.post(record.url, content=body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"the receiver answered HTTP {response.status_code}"

    def sweep(self) -> int:
        """Schedule the pending deliveries this web tier should make; return how many."""
        found = 0
        now = self._clock()
        self._final = {k: t for k, t in self._final.items() if now - t < _FINAL_TTL_S}
        for key in list(self.store.list(keys.CALLBACKS_PREFIX)):
            request_id = key[len(keys.CALLBACKS_PREFIX):].removesuffix(".json")
            if request_id in self._final:
                continue
            record = self.record(request_id)
            if record is None or record.state != "pending":
                if record is not None:
                    self._final[request_id] = now
                continue
            if record.owner != self.owner and self.store.exists(keys.web_tier_key(record.owner)):
                continue  # its web tier is alive and delivers it
            self.poke(request_id, at=record.next_attempt_at)
            found += 1
        return found

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 5)
        self._client.close()

    def _next_due(self, sweep_at: float) -> str | None:
        with self._wake:
            while not self._stop.is_set():
                now = self._clock()
                if now >= sweep_at:
                    return None
                if self._due and self._due[0][0] <= now:
                    when, request_id = heapq.heappop(self._due)
                    if self._scheduled.get(request_id) != when:
                        continue  # superseded by an earlier poke
                    del self._scheduled[request_id]
                    return request_id
                until = min(sweep_at, self._due[0][0]) if self._due else sweep_at
                self._wake.wait(max(0.01, until - now))
            return None

    def _run(self) -> None:
        sweep_at = self._clock()
        while not self._stop.is_set():
            try:
                if self._clock() >= sweep_at:
                    sweep_at = self._clock() + self.sweep_s
                    self.sweep()
                request_id = self._next_due(sweep_at)
                if request_id is not None:
                    self.attempt(request_id)
            except ImgrecError as exc:  # the store is unreachable: the next sweep retries
                log.warning("webhooks: %s", exc)
                self._stop.wait(1.0)
            except Exception:  # a bug must not end every later delivery with this thread
                log.exception("webhooks: unexpected error")
                self._stop.wait(1.0)
