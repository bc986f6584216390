"""The one way blocking work (ONNX, SQLite, boto3) leaves the event loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

P = ParamSpec("P")
T = TypeVar("T")


async def run_blocking(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``func`` in a worker thread so the event loop keeps serving other requests."""

    def call() -> T:
        return func(*args, **kwargs)

    return await anyio.to_thread.run_sync(call)
