"""Split a sequence into consecutive slices of at most ``size`` items."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``chunks([1, 2, 3], 2) == [[1, 2], [3]]``; no chunks for no items."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    return [items[i : i + size] for i in range(0, len(items), size)]
