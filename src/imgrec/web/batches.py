"""The batch API: ``POST /api/v1/batches``, ``.../{id}/items``, ``GET .../{id}``, ``.../events``.

Items go to the bulk lane (``keys.BULK_REQUEST_QUEUE``), which workers serve only when no
interactive request waits. A submission can take long (thousands of images stored and queued),
so its backend calls run with a budget of their own (``_SUBMIT_TIMEOUT_S``), not the short one
of single requests; reads of a batch use the request path's deadline.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .. import keys
from ..batches.export import MEDIA_TYPES, choose_format, export
from ..batches.progress import BatchNotFound, BatchReader, BatchView
from ..batches.record import BatchPart, is_part_name
from ..batches.submit import BatchFull, create_batch, existing_part, submit_part
from ..ports import Queue
from ..retention import is_expired
from .batch_forms import FILE_FIELDS, BatchForm, read_batch_form
from .batch_intake import YieldToInteractive
from .batch_schemas import BatchAccepted, BatchProgress, BatchSubmitted
from .deadline import DeadlineCalls
from .errors import ApiError
from .s3_source import add_s3_source, parse_source
from .sse import encode_comment, encode_event, event_stream_response

if TYPE_CHECKING:
    from .app import Runtime

_SUBMIT_TIMEOUT_S = 600.0
_EVENT_POLL_S = 0.5
_KEEPALIVE_S = 10.0

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed form, bad archive, bad part name or source."},
    401: {"description": "An API key is required and is missing or wrong."},
    404: {"description": "No such batch."},
    410: {"description": "The batch is past retention; its items and results were deleted."},
    413: {"description": "Over the batch's item or size limit."},
    503: {"description": "The queue or store is unreachable, or this stack has no bulk lane."},
}


_LINKS = {
    op: {"operationId": op, "parameters": {"batch_id": "$response.body#/id"}}
    for op in ("getBatch", "getBatchEvents", "addBatchItems")
}


def _form_body() -> dict[str, Any]:
    props: dict[str, Any] = {
        name: {"type": "array", "items": {"type": "string", "format": "binary"}}
        for name in FILE_FIELDS
    }
    props["part"] = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$",
                     "description": "Name of this submission; resending it returns the items "
                     "stored the first time instead of adding new ones."}
    props["source"] = {"type": "string", "description": "AWS backend: s3://bucket/prefix; "
                       "every image under it is added (the web tier must be allowed to read "
                       "it)."}
    return {"requestBody": {
        "required": False,
        "content": {"multipart/form-data": {"schema": {"type": "object", "properties": props}}},
        "description": "Image files (any number of file fields), or zip/tar archives of "
                       "images; no body creates an empty batch to add parts to.",
    }}


class _BatchTools:
    def __init__(self, rt: Runtime) -> None:
        self.reader = BatchReader(rt.backend.store)
        self.submit_calls = DeadlineCalls(_SUBMIT_TIMEOUT_S, max_threads=4)


_tools: weakref.WeakKeyDictionary[Runtime, _BatchTools] = weakref.WeakKeyDictionary()


def _tools_of(rt: Runtime) -> _BatchTools:
    tools = _tools.get(rt)
    if tools is None:
        tools = _tools.setdefault(rt, _BatchTools(rt))
    return tools


def _bulk_lane(rt: Runtime) -> Queue:
    if rt.backend.bulk is None:
        raise ApiError(503, "no_bulk_lane", "This stack has no bulk queue (it was made before "
                       "batches existed): run `imgrec aws up` again to add it.")
    return rt.backend.bulk


def _links(batch_id: str) -> dict[str, str]:
    base = f"/api/v1/batches/{batch_id}"
    return {"poll": base, "results": f"{base}?format=csv", "events": f"{base}/events"}


def batches_router(runtime: Callable[[], Runtime]) -> APIRouter:  # noqa: C901 - a list of routes
    router = APIRouter()

    async def read_form(rt: Runtime, request: Request) -> BatchForm:
        settings = rt.settings
        form = await read_batch_form(
            request, max_items=settings.max_batch_items, max_file_bytes=settings.max_upload_bytes,
            max_total_bytes=settings.max_batch_upload_bytes)
        if form.part is not None and not is_part_name(form.part):
            raise ApiError(400, "invalid_part", "part must be 1-64 letters, digits, '-' or '_'.")
        if form.source is not None:
            parse_source(form.source)  # 400 before anything is created
        return form

    async def add_part(rt: Runtime, batch_id: str, form: BatchForm) -> tuple[BatchPart, bool]:
        bulk = _bulk_lane(rt)
        tools = _tools_of(rt)
        part = form.part or f"p{keys.new_request_id()}"
        if form.source is not None:
            parts = await tools.submit_calls.run(
                "copying the source's images", add_s3_source, rt.backend, bulk, batch_id,
                form.source, part=part, max_items=rt.settings.max_batch_items,
                max_file_bytes=rt.settings.max_upload_bytes,
                max_pixels=rt.settings.max_image_pixels)
            items = tuple(i for p in parts for i in p.items)
            if form.items:
                more, _ = await add_part(rt, batch_id, BatchForm(form.items, form.part))
                items += more.items
            return BatchPart(part, items), True
        if form.part is not None:
            found = await rt.calls.run("reading the part", existing_part, rt.backend,
                                       batch_id, part)
            if found is not None:
                return found, False
        view = await rt.calls.run("reading the batch", tools.reader.read, batch_id)
        room = rt.settings.max_batch_items - len(view.items)
        try:
            stored = await tools.submit_calls.run(
                "storing and queueing the batch items", submit_part, rt.backend, bulk,
                batch_id, part, list(form.items), max_pixels=rt.settings.max_image_pixels,
                room=room, before_group=YieldToInteractive(rt.limits).wait)
        except BatchFull as exc:
            raise ApiError(413, "too_many_items", f"{exc}; start another batch.",
                           limit_items=rt.settings.max_batch_items) from exc
        return stored, True

    @router.post("/api/v1/batches", status_code=201, response_model=BatchAccepted,
                 operation_id="createBatch",
                 summary="Start a batch: many images, or zip/tar archives, on the bulk lane",
                 responses={**_ERRORS, 201: {"description": "Created; the items are queued.",
                                             "links": _LINKS}},
                 openapi_extra=_form_body())
    async def create(request: Request, response: Response) -> BatchAccepted:
        rt = runtime()
        _bulk_lane(rt)
        form = await read_form(rt, request)
        record = await rt.calls.run("creating the batch", create_batch, rt.backend)
        part: BatchPart | None = None
        if form.items or form.source is not None:
            try:
                part, _ = await add_part(rt, record.batch_id, form)
            except ApiError:  # refused as a whole (no images in the source, too many): no batch
                await rt.calls.run("removing the refused batch", rt.backend.store.delete,
                                   keys.batch_key(record.batch_id))
                raise
        links = _links(record.batch_id)
        response.headers["Location"] = links["poll"]
        return BatchAccepted(id=record.batch_id, items=_items(part), **links)

    @router.post("/api/v1/batches/{batch_id}/items", response_model=BatchSubmitted,
                 operation_id="addBatchItems",
                 summary="Add images to a batch (resending a named part adds nothing)",
                 responses=_ERRORS, openapi_extra=_form_body())
    async def add(batch_id: str, request: Request) -> BatchSubmitted:
        rt = runtime()
        await _view(rt, batch_id)  # 404/410 before reading a large body
        form = await read_form(rt, request)
        if not form.items and form.source is None:
            raise ApiError(400, "missing_file", "Send one or more image files (or an archive).")
        part, added = await add_part(rt, batch_id, form)
        return BatchSubmitted(id=batch_id, part=part.name, added=added, items=_items(part))

    @router.get("/api/v1/batches/{batch_id}", response_model=BatchProgress,
                operation_id="getBatch",
                summary="A batch's progress, or its results as CSV or JSON Lines",
                responses={**_ERRORS, 200: {"content": {
                    "application/json": {}, "text/csv": {"schema": {"type": "string"}},
                    "application/x-ndjson": {"schema": {"type": "string"}}},
                    "description": "Progress (JSON), or with ?format=csv|jsonl (or Accept) one "
                    "row per item: file, id, status, label, class_index, probability, error."}})
    async def get(batch_id: str, request: Request,
                  format: Literal["json", "csv", "jsonl"] | None = None) -> Response:
        rt = runtime()
        view = await _view(rt, batch_id)
        fmt = None if format == "json" else choose_format(format,
                                                          request.headers.get("accept", ""))
        if fmt is not None:
            return StreamingResponse(export(view, fmt), media_type=MEDIA_TYPES[fmt])
        return JSONResponse(progress(view).model_dump())

    @router.get("/api/v1/batches/{batch_id}/events", operation_id="getBatchEvents",
                summary="A batch's progress as server-sent events ('progress' on each "
                "change, 'done' at the end)",
                responses={**_ERRORS, 200: {"content": {"text/event-stream": {}},
                                            "description": "event: progress / done"}})
    async def events(batch_id: str, request: Request) -> StreamingResponse:
        rt = runtime()
        await _view(rt, batch_id)
        return event_stream_response(_events(rt, batch_id, request))

    return router


async def _view(rt: Runtime, batch_id: str) -> BatchView:
    if not keys.is_request_id(batch_id):
        raise ApiError(404, "batch_not_found", f"No batch with id {batch_id!r}.")
    try:
        return await rt.calls.run("reading the batch", _tools_of(rt).reader.read, batch_id)
    except BatchNotFound:
        retention_s = rt.settings.retention_days * 86400
        if is_expired(batch_id, retention_s, time.time()):
            raise ApiError(410, "batch_expired", f"Batch {batch_id} is past retention; its "
                           "items and results were deleted.", id=batch_id) from None
        raise ApiError(404, "batch_not_found", f"No batch with id {batch_id!r}.") from None


def progress(view: BatchView) -> BatchProgress:
    counts = view.counts()
    status = "empty" if not view.items else "done" if view.finished else "running"
    return BatchProgress(id=view.record.batch_id, created_at=view.record.created_at,
                         status=status, total=len(view.items), counts=counts,
                         **_links(view.record.batch_id))


def _items(part: BatchPart | None) -> list[dict[str, str]]:
    return [] if part is None else [{"id": i.request_id, "file": i.name} for i in part.items]


async def _events(rt: Runtime, batch_id: str, request: Request) -> AsyncIterator[bytes]:
    """``progress`` on every change, ``done`` at the end; ends early when the server stops."""
    last: dict[str, Any] | None = None
    quiet_s = 0.0
    while not await request.is_disconnected() and not rt.streams_end.is_set():
        try:
            view = await rt.calls.run("reading the batch", _tools_of(rt).reader.read, batch_id)
        except Exception as exc:  # noqa: BLE001 - report it on the stream, then end it
            yield encode_event({"error": type(exc).__name__, "detail": str(exc)}, event="error")
            return
        doc = progress(view).model_dump()
        if doc != last:
            last, quiet_s = doc, 0.0
            yield encode_event(doc, event="progress")
        if view.finished:
            yield encode_event(doc, event="done")
            return
        if quiet_s >= _KEEPALIVE_S:
            quiet_s = 0.0
            yield encode_comment("keep-alive")
        await asyncio.sleep(_EVENT_POLL_S)
        quiet_s += _EVENT_POLL_S

