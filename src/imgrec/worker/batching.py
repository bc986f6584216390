"""Forming batches from a queue and applying a batch function: pure logic, no model, no I/O.

A worker asks for up to ``max_size`` items, waiting up to ``first_wait_s`` for the first; once it
has one it tops the batch up for at most ``fill_wait_s``. A batch function must return exactly
one result per item; if it raises, or returns the wrong number, every item gets the failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

Receive = Callable[[int, float], list[T]]


def collect_batch(
    receive: Receive[T],
    *,
    max_size: int,
    first_wait_s: float,
    fill_wait_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> list[T]:
    """Receive one batch: wait for the first item, then fill for at most ``fill_wait_s``."""
    batch = list(receive(max_size, first_wait_s))
    if not batch:
        return batch
    deadline = clock() + fill_wait_s
    while len(batch) < max_size:
        remaining = deadline - clock()
        if remaining <= 0:
            break
        more = receive(max_size - len(batch), remaining)
        if not more:
            break
        batch.extend(more)
    return batch


class BatchResultMismatch(RuntimeError):
    """A batch function returned a different number of results than it was given items."""


def apply_batch(
    items: Sequence[T],
    func: Callable[[Sequence[T]], Sequence[R]],
    on_failure: Callable[[T, Exception], R],
) -> list[R]:
    """``func(items)``, with one result per item guaranteed; a failure goes to every item."""
    if not items:
        return []
    try:
        results = list(func(items))
        if len(results) != len(items):
            raise BatchResultMismatch(f"{len(results)} results for {len(items)} items")
    except Exception as exc:  # noqa: BLE001 - a batch failure must reach every item
        return [on_failure(item, exc) for item in items]
    return results
