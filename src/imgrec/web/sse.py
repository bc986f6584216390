"""Server-sent events: the encoding, a change notifier, and "stream these states until final".

Reusable by any resource whose state can be read by key: jobs use it
(``job_events.py``), and a batch does the same with its own ``read``::

    async def read(batch_id: str) -> State:
        progress = await load_progress(batch_id)
        return State(progress.to_dict(), final=progress.done)

    events = state_events([batch_id], read, notifier.wait_any)
    return event_stream_response(events)

Each key's state is sent once on connect, then again whenever it changes; the stream ends
once every key is final (or after ``max_s``: the client reconnects and gets the current state
first, so nothing is lost). ``notifier.notify(key)`` (from any thread) wakes the stream early;
without it the stream still re-reads every ``poll_s``, which covers changes made elsewhere
(another web tier, the CLI).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.responses import StreamingResponse

MEDIA_TYPE = "text/event-stream"


def encode_event(data: Any, *, event: str | None = None, event_id: str | None = None) -> bytes:
    """One event: ``event:``, ``id:`` and ``data:`` (compact JSON on one line), a blank line."""
    lines = []
    if event:
        lines.append(f"event: {event}")
    if event_id:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def encode_comment(text: str = "") -> bytes:
    """A comment line: ignored by clients, keeps proxies from closing an idle stream."""
    return f": {text}\n\n".encode()


@dataclass(frozen=True)
class State:
    """What one key looks like now (a JSON-able dict) and whether it will change again."""

    data: dict[str, Any]
    final: bool


class ChangeNotifier:
    """Wakes the streams waiting on a key when a thread (the reply dispatcher) says it changed."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[str, set[_Waiter]] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def notify(self, key: str) -> None:
        """Thread-safe; a no-op before ``bind`` or when nobody waits on ``key``."""
        if self._loop is not None and key in self._waiting:
            self._loop.call_soon_threadsafe(self._wake, key)

    def _wake(self, key: str) -> None:
        for waiter in self._waiting.get(key, ()):
            waiter.keys.add(key)
            waiter.event.set()

    async def wait_any(self, keys: Sequence[str], timeout_s: float) -> set[str]:
        """The keys notified once one of ``keys`` is, or an empty set after ``timeout_s``."""
        waiter = _Waiter()
        for key in keys:
            self._waiting.setdefault(key, set()).add(waiter)
        try:
            await asyncio.wait_for(waiter.event.wait(), timeout_s)
        except TimeoutError:
            pass
        finally:
            for key in keys:
                waiters = self._waiting.get(key)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._waiting[key]
        return waiter.keys


class _Waiter:
    """One stream's wait: its event and the keys that were notified meanwhile."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.keys: set[str] = set()


async def state_events(
    keys: Sequence[str],
    read: Callable[[str], Awaitable[State]],
    wait_any: Callable[[Sequence[str], float], Awaitable[set[str]]],
    *,
    event: str = "state",
    poll_s: float = 2.0,
    keepalive_s: float = 15.0,
    max_s: float = 300.0,
    stopping: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[bytes]:
    """Encoded events: each key's state on connect and on every change, until all are final.

    ``wait_any(keys, timeout_s)`` returns the keys notified (then only those are read again)
    or, after the timeout, an empty set (then every pending key is read again).

    ``stopping()`` true ends the stream at its next re-read (the server is shutting down and
    waits for open responses); the client reconnects to another server or after the restart.
    """
    last: dict[str, dict[str, Any]] = {}
    pending = list(dict.fromkeys(keys))
    started = quiet_since = clock()
    due = list(pending)
    while pending:
        for key in due:
            state = await read(key)
            if last.get(key) != state.data:
                last[key] = state.data
                quiet_since = clock()
                yield encode_event(state.data, event=event)
            if state.final:
                pending.remove(key)
        if not pending or clock() - started >= max_s or stopping():
            return
        if clock() - quiet_since >= keepalive_s:
            quiet_since = clock()
            yield encode_comment("keep-alive")
        woken = await wait_any(pending, poll_s)
        due = [k for k in pending if k in woken] if woken else list(pending)


def event_stream_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    """A ``text/event-stream`` response that proxies neither buffer nor cache."""
    return StreamingResponse(
        events, media_type=MEDIA_TYPE,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
