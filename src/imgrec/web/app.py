"""The FastAPI app: the course's plain-text API, the JSON API, jobs, health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp

from .. import __version__, keys
from ..autoscale.controller import Controller
from ..backend import open_backend
from ..config import Settings
from ..errors import ImgrecError
from ..messages import ClassifyResult
from ..ports import Backend, Fleet
from ..retention import Janitor
from ..worker.dead_letters import DeadLetterResponder
from . import page
from .auth import ApiKeyAuth
from .backlog import Admission, BacklogGate
from .batches import batches_router
from .dead_letter_routes import dead_letters_router
from .deadline import DeadlineCalls
from .errors import EXCEPTION_HANDLERS, ApiError
from .fast_uploads import FastUploads
from .job_events import job_events_router, read_job
from .job_options import OPENAPI_HEADERS, job_options
from .job_routes import job_router
from .limits import BodySizeLimit, ClientConcurrency
from .metrics import ControllerCollector, WebMetrics
from .outcomes import raise_unless_done
from .presence import WebPresence
from .replies import ReplyDispatcher
from .schemas import Classification, ErrorBody, Health, Job, JobAccepted
from .service import ClassifyService
from .sse import ChangeNotifier
from .status import status_router
from .uploads import API_FIELDS, COURSE_FIELDS, Upload, read_upload
from .webhook_sender import WebhookSender
from .webhooks import CallbackRefused, check_callback_url

log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "No file, several files, or an empty file; an invalid Idempotency-Key or "
             "X-Deadline-S header; or a refused callback_url.",
        401: "An API key is required (IMGREC_API_KEY is set) and is missing or wrong.",
        413: "The file is over the upload limit.",
        415: "The file is not an image.",
        422: "The image is corrupt or too large to decode.",
        408: "Synchronous routes: the request's own deadline (X-Deadline-S) passed before an "
             "answer (deadline_exceeded); poll the job id given.",
        409: "The Idempotency-Key was used before for a different image "
             "(idempotency_key_reused); synchronous routes: the job was cancelled.",
        429: "Too many requests in progress from this client.",
        503: "The queue or store is unreachable, or the backlog is at its cap (see "
             "Retry-After).",
        504: "No answer within the wait limit (IMGREC_SYNC_TIMEOUT_S); poll the job id given.",
    }.items()
}


def _upload_body(fields: tuple[str, ...]) -> dict[str, Any]:
    props = {f: {"type": "string", "format": "binary"} for f in fields}
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": {"type": "object", "properties": props}}},
            "description": f"One image in any one of the fields: {', '.join(fields)}.",
        },
        "parameters": OPENAPI_HEADERS,
    }


@dataclass(frozen=True)
class Scaling:
    """The app tier's fleet and its autoscaler, when this web tier runs them (``imgrec serve``)."""

    fleet: Fleet
    controller: Controller


class Runtime:
    """What the app holds while it runs: backend, reply queue, dispatcher, service, scaling.

    Also this web tier's heartbeat (``presence``: it removes the reply queues of dead web
    tiers) and, on the embedded backend, the janitor that enforces retention.
    """

    def __init__(self, settings: Settings, backend: Backend | None,
                 scaling: Scaling | None = None) -> None:
        self.settings = settings
        self.backend = backend or open_backend(settings)
        self.scaling = scaling
        self.reply_queue_name = keys.reply_queue_name()
        self.presence = WebPresence(
            self.backend.store, self.backend.broker, self.reply_queue_name,
            interval_s=settings.web_heartbeat_s, grace_s=settings.reply_queue_grace_s,
        )
        try:
            self.presence.beat()  # before the queue exists: no queue without its record
        except ImgrecError as exc:  # the next beats try again; serving matters more
            log.warning("web-tier heartbeat not written (%s); if this process dies before a "
                        "beat succeeds, its reply queue is left behind", exc)
        reply_queue = self.backend.broker.open(self.reply_queue_name)
        self.metrics = WebMetrics(self.backend)
        self.dispatcher = ReplyDispatcher(
            reply_queue, self.backend.store, on_tracked_answer=self.metrics.observe,
            reopen=lambda: self.backend.broker.open(self.reply_queue_name),
        )
        self.calls = DeadlineCalls(settings.backend_timeout_s)
        self.backlog = BacklogGate(
            self.backend.requests, self.calls, max_backlog=settings.max_backlog,
            rate_per_s=lambda: self.metrics.recent.stats().answered_per_s,
        )
        self.service = ClassifyService(
            self.backend, self.dispatcher, self.reply_queue_name,
            sync_timeout_s=settings.sync_timeout_s, calls=self.calls,
            retention_s=settings.retention_days * 86400,
        )
        self.dead_letters = DeadLetterResponder(self.backend)
        self.job_changes = ChangeNotifier()
        self.streams_end = threading.Event()  # set on SIGTERM: event streams close
        self.webhooks = _webhook_sender(settings, self.backend, self.reply_queue_name)
        self.dispatcher.on_answer = self._answered
        self.limits = ClientConcurrency(settings.max_concurrent_per_client)
        self.janitor = Janitor(
            self.backend.store, retention_s=settings.retention_days * 86400,
            interval_s=settings.janitor_interval_s,
        ) if settings.backend == "embedded" else None  # on AWS: S3 lifecycle rules

    def _answered(self, request_id: str) -> None:
        self.job_changes.notify(request_id)
        if self.webhooks is not None:
            self.webhooks.poke(request_id)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.job_changes.bind(loop)
        if self.webhooks is not None:
            self.webhooks.start()
        self.dispatcher.start(loop)
        self.dead_letters.start()
        self.presence.start()
        if self.janitor is not None:
            self.janitor.start()
        if self.scaling is not None:
            controller = self.scaling.controller
            controller.answers = self.metrics.recent
            self.service.on_queued = controller.wake
            self.metrics.registry.register(ControllerCollector(controller))
            controller.start()

    def close(self) -> None:
        if self.scaling is not None:
            self.scaling.controller.stop()
            self.scaling.fleet.close()
        if self.janitor is not None:
            self.janitor.stop()
        self.dead_letters.stop()
        self.dispatcher.stop()
        if self.webhooks is not None:
            self.webhooks.stop()
        try:
            self.backend.broker.delete_queue(self.reply_queue_name)
        except ImgrecError as exc:
            log.warning("reply queue %s not deleted (it is removed %.0f s after this web "
                        "tier's last heartbeat): %s", self.reply_queue_name,
                        self.settings.reply_queue_grace_s, exc)
        else:
            self.presence.stop()
        self.calls.close()


def _webhook_sender(settings: Settings, backend: Backend, owner: str) -> WebhookSender | None:
    if settings.webhook_secret is None:
        return None
    return WebhookSender(
        backend.store, settings.webhook_secret.get_secret_value().encode(), owner=owner,
        allow_private=settings.webhook_allow_private,
        max_attempts=settings.webhook_max_attempts, backoff_s=settings.webhook_backoff_s,
        timeout_s=settings.webhook_timeout_s,
    )


async def _callback(rt: Runtime, url: str | None) -> str | None:
    """The job's checked callback URL, or a 400 that says why it is refused."""
    if url is None:
        return None
    if rt.webhooks is None:
        raise ApiError(400, "webhooks_disabled", "This service sends no webhooks: set "
                       "IMGREC_WEBHOOK_SECRET (the signing key) to allow callback_url.")
    try:
        return await run_in_threadpool(check_callback_url, url,
                                       allow_private=rt.settings.webhook_allow_private)
    except CallbackRefused as exc:
        raise ApiError(400, "callback_refused", str(exc)) from exc


class RuntimeHolder:
    """The running app's ``Runtime``, set by the lifespan; routes read it through ``get``."""

    def __init__(self) -> None:
        self._runtime: Runtime | None = None

    def get(self) -> Runtime:
        if self._runtime is None:
            raise ApiError(503, "starting", "The service is starting; try again in a moment.")
        return self._runtime

    def set(self, runtime: Runtime | None) -> None:
        self._runtime = runtime

    def end_streams(self) -> None:
        """Close the open event streams (the server is stopping and waits for responses)."""
        if self._runtime is not None:
            self._runtime.streams_end.set()


def create_app(settings: Settings, backend: Backend | None = None, *,
               scaling: Scaling | None = None, fast_uploads: bool = True) -> FastAPI:
    """Build the web tier. The backend is opened at start-up unless one is given; with
    ``scaling`` the lifespan also starts the autoscaler and, on shutdown, stops it and the fleet.
    ``fast_uploads`` answers the two synchronous upload routes past FastAPI's stack
    (``fast_uploads.py``); without it FastAPI's routes answer them, the same way.
    """
    holder = RuntimeHolder()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await run_in_threadpool(Runtime, settings, backend, scaling)
        runtime.start(asyncio.get_running_loop())
        holder.set(runtime)
        try:
            yield
        finally:
            holder.set(None)
            await run_in_threadpool(runtime.close)

    app = FastAPI(
        title="imgrec",
        version=__version__,
        summary="Elastic image recognition: upload an image, get its ImageNet label.",
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_upload_bytes,
                       larger={"/api/v1/batches": settings.max_batch_upload_bytes})
    if settings.api_key is not None:  # added last: runs first, before any body is read
        app.add_middleware(ApiKeyAuth, api_key=settings.api_key.get_secret_value())
    _add_routes(app, holder)
    if fast_uploads:  # outermost: in front of the middleware above, which it applies itself
        app.add_middleware(FastUploads, endpoints=_upload_endpoints(holder),
                           guard=lambda inner: _guarded(settings, inner),
                           handlers=EXCEPTION_HANDLERS)
    app.state.end_streams = holder.end_streams
    app.include_router(status_router(holder.get))
    app.include_router(job_router(holder.get))
    app.include_router(dead_letters_router(holder.get))
    app.include_router(job_events_router(holder.get))
    app.include_router(batches_router(holder.get))
    return app


def _guarded(settings: Settings, inner: ASGIApp) -> ASGIApp:
    """``inner`` behind the API key and body-size middleware, as ``create_app`` orders them."""
    inner = BodySizeLimit(inner, max_body_bytes=settings.max_upload_bytes)
    if settings.api_key is not None:
        inner = ApiKeyAuth(inner, api_key=settings.api_key.get_secret_value())
    return inner


async def _classify_plain(rt: Runtime, request: Request) -> PlainTextResponse:
    upload, result = await _classify(rt, request, COURSE_FIELDS)
    return PlainTextResponse(f"{upload.stem}:{result.label}")


async def _classify_json(rt: Runtime, request: Request) -> Classification:
    upload, result = await _classify(rt, request, API_FIELDS)
    return Classification.from_result(result, file=upload.filename)


def _upload_endpoints(holder: RuntimeHolder) -> dict[str, Callable[[Request], Awaitable[Response]]]:
    """The fast path's endpoints; a JSON answer is serialized as FastAPI serializes its
    ``response_model`` (pydantic's ``dump_json``), so the bytes are the same."""

    async def plain(request: Request) -> Response:
        return await _classify_plain(holder.get(), request)

    async def json(request: Request) -> Response:
        body = await _classify_json(holder.get(), request)
        return Response(body.model_dump_json(by_alias=True), media_type="application/json")

    return {"/": plain, "/api/v1/classify": json}


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@asynccontextmanager
async def _admitted(rt: Runtime, request: Request) -> AsyncIterator[Admission]:
    """Hold one of the client's slots (429 past its cap) and a place in the backlog (503 past
    the cap). A refusal comes before the upload is parsed, so it is cheap under overload; the
    body is still read (and dropped) first, so the client sees the answer, not a reset."""
    client = _client_address(request)
    try:
        with rt.limits.slot(client):
            try:
                admission = await rt.backlog.admit()
            except ApiError:
                await _drain(request)
                raise
            try:
                yield admission
            finally:
                admission.close()
    except ApiError as exc:
        if exc.status == 429:
            await _drain(request)
        raise


async def _drain(request: Request) -> None:
    with contextlib.suppress(ClientDisconnect):
        async for _chunk in request.stream():
            pass


async def _accept(rt: Runtime, request: Request, fields: tuple[str, ...]) -> Upload:
    return await read_upload(
        request, fields, max_bytes=rt.settings.max_upload_bytes,
        max_pixels=rt.settings.max_image_pixels,
    )


async def _classify(
    rt: Runtime, request: Request, fields: tuple[str, ...]
) -> tuple[Upload, ClassifyResult]:
    started = time.perf_counter()
    async with _admitted(rt, request) as admission:
        upload = await _accept(rt, request, fields)
        request_id, future = await rt.service.submit(upload, wait=True, admission=admission,
                                                     options=job_options(request.headers))
        assert future is not None
        result = await rt.service.wait(request_id, future)
    rt.metrics.observe(result, time.perf_counter() - started)
    raise_unless_done(result)
    result.timings_ms["total_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return upload, result


def _add_routes(app: FastAPI, holder: RuntimeHolder) -> None:  # noqa: C901 - a list of routes
    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        return page.index(request)

    page.mount_static(app)

    @app.post(
        "/",
        response_class=PlainTextResponse,
        summary="Course API: classify one image, answer '<file stem>:<label>'",
        responses=_ERRORS,
        openapi_extra=_upload_body(COURSE_FIELDS),
    )
    async def classify_plain(request: Request) -> PlainTextResponse:
        return await _classify_plain(holder.get(), request)

    @app.post(
        "/api/v1/classify",
        response_model=Classification,
        summary="Classify one image and wait for the answer",
        responses=_ERRORS,
        openapi_extra=_upload_body(API_FIELDS),
    )
    async def classify_json(request: Request) -> Classification:
        return await _classify_json(holder.get(), request)

    @app.post(
        "/api/v1/jobs",
        status_code=202,
        response_model=JobAccepted,
        summary="Queue one image; poll the returned URL for the answer",
        responses=_ERRORS,
        openapi_extra=_upload_body(API_FIELDS),
    )
    async def submit_job(
        request: Request, response: Response,
        callback_url: str | None = Query(None, max_length=2048, description=(
            "POST the finished job's document here, signed (X-Imgrec-Signature: "
            "t=<unix s>,v1=<hex HMAC-SHA256(IMGREC_WEBHOOK_SECRET, '<t>.' + body)>); retried "
            "with exponential backoff. Needs IMGREC_WEBHOOK_SECRET; loopback and private "
            "addresses are refused (400) unless IMGREC_WEBHOOK_ALLOW_PRIVATE.")),
    ) -> JobAccepted:
        rt = holder.get()
        callback = await _callback(rt, callback_url)
        async with _admitted(rt, request) as admission:
            upload = await _accept(rt, request, API_FIELDS)
            request_id, _ = await rt.service.submit(upload, wait=False, admission=admission,
                                                    options=job_options(request.headers))
        if callback is not None and rt.webhooks is not None:
            await rt.calls.run("storing the job's webhook", rt.webhooks.register, request_id,
                               callback)
        poll = f"/api/v1/jobs/{request_id}"
        response.headers["Location"] = poll
        return JobAccepted(id=request_id, poll=poll)

    @app.get(
        "/api/v1/jobs/{job_id}",
        response_model=Job,
        summary="A job's state and, once done, its result",
        responses={404: {"model": ErrorBody, "description": "No such job."},
                   410: {"model": ErrorBody,
                         "description": "The job is past retention; its result was deleted."},
                   503: {"model": ErrorBody, "description": "Backend unreachable."}},
    )
    async def get_job(job_id: str) -> Job:
        return await read_job(holder.get(), job_id)

    @app.get("/healthz", response_model=Health, summary="Liveness and queue depth",
             responses={503: {"model": ErrorBody, "description": "Backend unreachable."}})
    async def healthz() -> Health:
        rt = holder.get()
        depth = await rt.calls.run("reading the queue depth", rt.backend.requests.depth)
        return Health(status="ok", backend=rt.backend.description,
                      queue_visible=depth.visible, queue_in_flight=depth.in_flight)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        rt = holder.get()
        await rt.calls.run("reading the queue depth", rt.metrics.refresh)
        return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)
