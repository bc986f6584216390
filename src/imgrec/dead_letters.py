"""Dead letters you can act on: why each request died, replay it under its id, or drop it.

The dead-letter queue itself is consumed by ``worker.dead_letters.DeadLetterResponder`` (it
answers the waiting client at once). When it answers, it also stores a record,
``dead-letters/<id>.json``, with the reason; listing, replaying and purging work on those
records, so they coexist with the responder and several web tiers see the same list. A record
expires with its job (the janitor, S3 lifecycle rules).

Example::

    admin = DeadLetters(backend)
    admin.collect()                     # answer what still waits on the dead-letter queue
    for letter in admin.list():
        print(letter.request_id, letter.reason)
    admin.replay(letter.request_id)     # back on the request queue, same id
"""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from . import keys
from .errors import ImgrecError, ObjectNotFound, PermanentError
from .messages import ClassifyRequest, ClassifyResult, MessageError
from .ports import Backend, ObjectStore

FAILED_CODE = "processing_failed"  # the error result the responder stores for a dead letter
LetterState = Literal["dead", "replayed"]


class DeadLetterNotFound(PermanentError):
    """No dead-letter record for that request id."""


class InputGone(PermanentError):
    """The request's input image is no longer stored, so it cannot be replayed."""


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered request: what it was, how often it was tried, when and why it died.

    ``receive_count`` counts the deliveries on the request queue (``max_receives`` of them,
    each taken by a worker that never finished it); ``sent_at`` and ``died_at`` are Unix
    seconds; ``replays`` counts how often it was put back on the request queue; ``reply_to``
    is the reply queue of the web tier that queued it.
    """

    request_id: str
    key: str
    receive_count: int
    sent_at: float
    died_at: float
    error_code: str
    reason: str
    state: LetterState = "dead"
    replays: int = 0
    replayed_at: float | None = None
    reply_to: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> DeadLetter:
        try:
            data: dict[str, Any] = json.loads(raw)
            return cls(
                request_id=str(data["request_id"]), key=str(data["key"]),
                receive_count=int(data["receive_count"]), sent_at=float(data["sent_at"]),
                died_at=float(data["died_at"]), error_code=str(data["error_code"]),
                reason=str(data["reason"]), state="replayed" if data.get("state") == "replayed"
                else "dead", replays=int(data.get("replays", 0)),
                replayed_at=None if data.get("replayed_at") is None
                else float(data["replayed_at"]),
                reply_to=None if data.get("reply_to") is None else str(data["reply_to"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise MessageError(f"malformed dead-letter record: {exc}") from exc


def death_reason(receive_count: int, input_present: bool) -> str:
    """The sentence a dead letter's record and its error result carry."""
    tried = f"It was delivered {receive_count} time{'s' if receive_count != 1 else ''}"
    if not input_present:
        return (f"{tried} and never finished; its input image is gone (expired or deleted), "
                "so it cannot be classified.")
    return (f"{tried} and never finished: the workers that took it crashed, were killed or "
            "timed out each time (a poison image, or workers short of memory).")


def record_dead_letter(store: ObjectStore, request: ClassifyRequest, receive_count: int,
                       *, now: float | None = None) -> DeadLetter:
    """Store the record of a request that just died (``receive_count``: deliveries it had)."""
    letter = DeadLetter(
        request_id=request.request_id, key=request.key, receive_count=receive_count,
        sent_at=request.sent_at, died_at=time.time() if now is None else now,
        error_code=FAILED_CODE,
        reason=death_reason(receive_count, store.exists(request.key)),
        reply_to=request.reply_to,
    )
    previous = _read(store, request.request_id)
    if previous is not None:  # died again after a replay: keep the count of replays
        letter = replace(letter, replays=previous.replays)
    store.put(keys.dead_letter_key(request.request_id), letter.to_json())
    return letter


def _read(store: ObjectStore, request_id: str) -> DeadLetter | None:
    try:
        return DeadLetter.from_json(store.get(keys.dead_letter_key(request_id)))
    except (ObjectNotFound, MessageError):
        return None


class DeadLetters:
    """List, show, replay and purge dead-lettered requests of one backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def collect(self, max_batches: int = 100) -> int:
        """Answer the requests still waiting on the dead-letter queue (and record them).

        A web tier's responder does this continuously; the CLI calls it first, so that
        ``list`` is complete also when no web tier is running. Returns how many were handled.
        """
        from .worker.dead_letters import DeadLetterResponder

        responder = DeadLetterResponder(self.backend)
        handled = 0
        for _ in range(max_batches):
            n = responder.handle_once()
            handled += n
            if not n:
                break
        return handled

    def list(self, *, include_replayed: bool = True) -> list[DeadLetter]:
        """Every recorded dead letter, the most recent death first."""
        store = self.backend.store
        found: builtins.list[DeadLetter] = []
        for key in builtins.list(store.list(keys.DEAD_LETTERS_PREFIX)):
            request_id = key[len(keys.DEAD_LETTERS_PREFIX):].removesuffix(".json")
            letter = _read(store, request_id)
            if letter is not None and (include_replayed or letter.state == "dead"):
                found.append(letter)
        return sorted(found, key=lambda d: d.died_at, reverse=True)

    def show(self, request_id: str) -> DeadLetter:
        if not keys.is_request_id(request_id):
            raise DeadLetterNotFound(f"{request_id!r} is not a request id (32 hex characters)")
        letter = _read(self.backend.store, request_id)
        if letter is None:
            raise DeadLetterNotFound(f"no dead letter with id {request_id}")
        return letter

    def input_present(self, letter: DeadLetter) -> bool:
        return self.backend.store.exists(letter.key)

    def replay(self, request_id: str, *, reply_to: str | None = None) -> DeadLetter:
        """Queue the request again under its original id; its failure result is removed, so
        the job reads as queued until a worker answers it. ``InputGone`` if the image is gone.

        The answer goes to ``reply_to``, else to the web tier that first queued it if that one
        is still up (its job's webhook and event streams live there).
        """
        letter = self.show(request_id)
        store = self.backend.store
        if reply_to is None and letter.reply_to is not None \
                and store.exists(keys.web_tier_key(letter.reply_to)):
            reply_to = letter.reply_to
        if not store.exists(letter.key):
            raise InputGone(
                f"request {request_id} cannot be replayed: its input image ({letter.key}) is "
                "gone (past retention, or deleted). Submit the image again as a new job."
            )
        failure = self._failure_result(request_id)
        if failure is not None:
            store.delete(keys.result_key(request_id))
        request = ClassifyRequest(request_id=request_id, key=letter.key, reply_to=reply_to,
                                  sent_at=time.time())
        try:
            self.backend.requests.send([request.encode()])
        except ImgrecError:
            if failure is not None:  # not queued: the job keeps its answer
                store.put(keys.result_key(request_id), failure.to_json())
            raise
        replayed = replace(letter, state="replayed", replays=letter.replays + 1,
                           replayed_at=request.sent_at)
        store.put(keys.dead_letter_key(request_id), replayed.to_json())
        return replayed

    def _failure_result(self, request_id: str) -> ClassifyResult | None:
        """The responder's error result for this request, if that is what is stored."""
        try:
            result = ClassifyResult.from_json(self.backend.store.get(keys.result_key(request_id)))
        except (ObjectNotFound, MessageError):
            return None
        return result if not result.ok and result.error_code == FAILED_CODE else None

    def purge(self, request_id: str | None = None) -> int:
        """Drop one dead letter's record (or all of them); the job keeps its error result."""
        if request_id is not None:
            self.show(request_id)
            self.backend.store.delete(keys.dead_letter_key(request_id))
            return 1
        store = self.backend.store
        gone = builtins.list(store.list(keys.DEAD_LETTERS_PREFIX))
        for key in gone:
            store.delete(key)
        return len(gone)

