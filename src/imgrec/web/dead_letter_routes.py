"""``/api/v1/dead-letters``: the same list, show, replay and purge as ``imgrec dlq``.

The web tier's ``DeadLetterResponder`` records each dead letter as it answers it; these routes
read and act on those records (``imgrec.dead_letters``). A replay from here answers on this web
tier's reply queue, so its job's webhook and event stream see the new answer at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ..dead_letters import DeadLetter, DeadLetterNotFound, DeadLetters, InputGone
from .errors import ApiError
from .schemas import ErrorBody

if TYPE_CHECKING:
    from .app import Runtime


class DeadLetterBody(BaseModel):
    request_id: str = Field(description="The request (job) id, 32 hex characters.")
    key: str = Field(description="Object key of its input image.")
    receive_count: int = Field(description="Deliveries to workers before it was set aside.")
    sent_at: float = Field(description="When it was (last) queued, Unix seconds.")
    died_at: float = Field(description="When it was dead-lettered, Unix seconds.")
    error_code: str = Field(description="The error its job answers with: processing_failed.")
    reason: str = Field(description="Why it died, in a sentence.")
    state: Literal["dead", "replayed"] = Field(description="replayed: queued again since.")
    replays: int = Field(description="How often it was replayed.")
    replayed_at: float | None = Field(None, description="Last replay, Unix seconds.")
    input_present: bool = Field(description="Whether its image is still there to replay.")


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetterBody]


class Purged(BaseModel):
    purged: int = Field(description="How many dead-letter records were dropped.")


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No dead letter with that id."},
    503: {"model": ErrorBody, "description": "Backend unreachable."},
}


@contextlib.contextmanager
def _as_api_errors(request_id: str) -> Iterator[None]:
    try:
        yield
    except DeadLetterNotFound as exc:
        raise ApiError(404, "dead_letter_not_found", f"{exc}.") from exc
    except InputGone as exc:
        raise ApiError(410, "input_gone", str(exc), id=request_id) from exc


def _body(admin: DeadLetters, letter: DeadLetter) -> DeadLetterBody:
    return DeadLetterBody(**asdict(letter), input_present=admin.input_present(letter))


def _all(admin: DeadLetters) -> DeadLetterList:
    return DeadLetterList(dead_letters=[_body(admin, d) for d in admin.list()])


def _show(admin: DeadLetters, request_id: str) -> DeadLetterBody:
    with _as_api_errors(request_id):
        return _body(admin, admin.show(request_id))


def _replay(rt: Runtime, request_id: str) -> DeadLetterBody:
    admin = DeadLetters(rt.backend)
    with _as_api_errors(request_id):
        letter = admin.replay(request_id, reply_to=rt.reply_queue_name)
    if rt.webhooks is not None:
        rt.webhooks.rearm(request_id)
    return _body(admin, letter)


def _purge(admin: DeadLetters, request_id: str | None) -> Purged:
    with _as_api_errors(request_id or ""):
        return Purged(purged=admin.purge(request_id))


def dead_letters_router(runtime: Callable[[], Runtime]) -> APIRouter:
    router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])

    @router.get("", response_model=DeadLetterList, summary="Dead-lettered requests, newest first",
                responses={503: _NOT_FOUND[503]})
    async def list_dead_letters() -> DeadLetterList:
        rt = runtime()
        return await rt.calls.run("listing dead letters", _all, DeadLetters(rt.backend))

    @router.get("/{request_id}", response_model=DeadLetterBody,
                summary="One dead letter: why and when it died", responses=_NOT_FOUND)
    async def show_dead_letter(request_id: str) -> DeadLetterBody:
        rt = runtime()
        return await rt.calls.run("reading a dead letter", _show, DeadLetters(rt.backend),
                                  request_id)

    @router.post(
        "/{request_id}/replay", status_code=202, response_model=DeadLetterBody,
        summary="Queue a dead letter again under its original id",
        responses={**_NOT_FOUND, 410: {"model": ErrorBody, "description":
                                       "Its input image is gone; submit the image again."}},
    )
    async def replay_dead_letter(request_id: str) -> DeadLetterBody:
        rt = runtime()
        rt.dispatcher.track(request_id)  # its answer comes to this web tier's reply queue
        return await rt.calls.run("replaying a dead letter", _replay, rt, request_id)

    @router.delete("/{request_id}", response_model=Purged, summary="Drop one dead letter",
                   responses=_NOT_FOUND)
    async def purge_dead_letter(request_id: str) -> Purged:
        rt = runtime()
        return await rt.calls.run("dropping a dead letter", _purge, DeadLetters(rt.backend),
                                  request_id)

    @router.delete("", response_model=Purged, summary="Drop every dead letter",
                   responses={503: _NOT_FOUND[503]})
    async def purge_all_dead_letters() -> Purged:
        rt = runtime()
        return await rt.calls.run("dropping dead letters", _purge, DeadLetters(rt.backend), None)

    return router
