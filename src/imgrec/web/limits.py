"""Limits on what one client can send: body size, and requests in progress per address."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, error_response

_FORM_OVERHEAD_BYTES = 64 * 1024


class BodySizeLimit:
    """ASGI middleware: 413 for a body over the upload limit, before it is read into memory.

    Checks Content-Length up front and counts the bytes of chunked bodies as they arrive.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int,
                 larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes + _FORM_OVERHEAD_BYTES
        self.max_file_bytes = max_body_bytes
        # Paths under these prefixes (batch uploads) take bodies up to their own limit.
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        for prefix, limit in self.larger.items():
            if path.startswith(prefix):
                await BodySizeLimit(self.app, limit)(scope, receive, send)
                return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "file_too_large", f"The upload is over the limit of {self.max_file_bytes} bytes.",
            headers={"Connection": "close"}, limit_bytes=self.max_file_bytes,
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


class ClientConcurrency:
    """Counts requests in progress per client address; past the cap a request gets 429.

    Batch intake waits (``wait_until_idle``) while any request is in progress here: a web
    tier taking in a batch part serves interactive uploads first.
    """

    def __init__(self, max_per_client: int, retry_after_s: int = 1) -> None:
        self.max_per_client = max_per_client
        self.retry_after_s = retry_after_s
        self._active: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()

    def wait_until_idle(self, timeout_s: float) -> bool:
        """Block until no request is in progress, at most ``timeout_s``; whether none is."""
        return self._idle.wait(timeout_s)

    @contextmanager
    def slot(self, client: str) -> Iterator[None]:
        with self._lock:
            if self._active[client] >= self.max_per_client:
                raise ApiError(
                    429, "too_many_requests",
                    f"This client already has {self.max_per_client} requests in progress; "
                    "wait for some to finish.",
                    headers={"Retry-After": str(self.retry_after_s)},
                )
            self._active[client] += 1
            self._idle.clear()
        try:
            yield
        finally:
            with self._lock:
                self._active[client] -= 1
                if self._active[client] <= 0:
                    del self._active[client]
                if not self._active:
                    self._idle.set()
