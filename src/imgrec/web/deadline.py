"""Blocking backend calls of a web request, each answered within a deadline.

A hung endpoint (an S3 or SQS that accepts connections and never answers, a queue file locked
by another process) must cost a client a quick 503, not the sum of every socket timeout and
retry below. Each call runs in a thread pool of its own and the request waits at most
``timeout_s`` for it; past that it gets ``BackendUnavailable`` (a 503), and the call is
abandoned: one still queued for a thread never runs, one already running finishes in the
background (the adapters' own timeouts bound it) and the function can see ``abandoned`` set.

Starlette's ``run_in_threadpool`` cannot give up on a call: a cancelled await still waits for
the thread. That is why the request path has a pool of its own.

Example::

    calls = DeadlineCalls(timeout_s=2.5)
    depth = await calls.run("reading the queue depth", backend.requests.depth)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from ..errors import BackendUnavailable

P = ParamSpec("P")
T = TypeVar("T")


class DeadlineCalls:
    """Runs blocking calls in ``max_threads`` threads; a caller waits at most ``timeout_s``."""

    def __init__(self, timeout_s: float, *, max_threads: int = 32) -> None:
        self.timeout_s = timeout_s
        self.abandoned = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(max_threads,
                                                           thread_name_prefix="backend")

    async def run(self, what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in a thread, or ``BackendUnavailable`` after the deadline."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))
        try:
            return await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            self.abandoned += 1
            raise BackendUnavailable(
                f"{what}: no answer within {self.timeout_s:g} s (the queue or store is hung "
                "or locked)"
            ) from None

    async def run_abandonable(
        self, what: str, fn: Callable[[threading.Event], T]
    ) -> T:
        """Like ``run``; ``fn`` gets an event that is set once the caller has given up."""
        abandoned = threading.Event()
        try:
            return await self.run(what, fn, abandoned)
        except BackendUnavailable:
            abandoned.set()
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
