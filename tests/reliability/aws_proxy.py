"""A TCP proxy in front of moto that a test can cut and restore: an outage without lost state.

Stopping moto itself would lose every bucket and queue (its state is in memory), and a threaded
moto server does not reliably come back on the same port. The service talks to this proxy
instead (``AWS_ENDPOINT_URL`` points at it); ``cut()`` closes the listener and drops every open
connection, so new connections are refused and pooled ones fail, just as when the endpoint
goes down; ``stall()`` keeps accepting connections but never answers (a hung endpoint, the
case that needs short timeouts); ``restore()`` forwards again, on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlsplit

_CHUNK = 64 * 1024


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to ``target`` (``http://host:port``) until cut.

    Example::

        with CuttableProxy(moto.url) as proxy:
            env["AWS_ENDPOINT_URL"] = proxy.url
            proxy.cut()      # connections refused, open ones reset
            proxy.restore()  # back on the same port
    """

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        assert parts.hostname and parts.port, target
        self._target = (parts.hostname, parts.port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="aws-proxy",
                                        daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._stalled = False
        self.port = 0
        self.connections = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._server is None

    def __enter__(self) -> CuttableProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def __exit__(self, *_exc: object) -> None:
        if not self.is_cut:
            self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        self._call(self._cut())

    def stall(self) -> None:
        """Reset the open connections; accept new ones but never answer them."""
        self._call(self._stall())

    def restore(self) -> None:
        """Forward again, on the same port (after ``cut`` or ``stall``)."""
        self._call(self._restore())

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        assert self._server is None, "already listening"
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stall(self) -> None:
        self._stalled = True
        self._abort_all()

    async def _restore(self) -> None:
        if self._stalled:
            self._stalled = False
            self._abort_all()
        if self._server is None:
            await self._listen()

    def _abort_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _cut(self) -> None:
        assert self._server is not None, "already cut"
        server, self._server = self._server, None
        server.close()
        self._abort_all()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._server is None:  # accepted just before the cut
            client_w.transport.abort()
            return
        if self._stalled:  # hold the connection, read nothing, answer nothing
            self._writers.add(client_w)
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.transport.abort()
            return
        self.connections += 1
        self._writers.update((client_w, up_w))
        try:
            await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))
        finally:
            self._writers.difference_update((client_w, up_w))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until either side ends, then close the writing side too (no half-open links)."""
    with contextlib.suppress(OSError, RuntimeError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
