from __future__ import annotations

from collections.abc import Sequence

import pytest

from imgrec.worker.batching import apply_batch, collect_batch


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _source(chunks: list[list[int]], clock: FakeClock, step_s: float = 0.001):  # type: ignore[no-untyped-def]
    calls: list[tuple[int, float]] = []

    def receive(n: int, wait: float) -> list[int]:
        calls.append((n, wait))
        clock.now += step_s
        return chunks.pop(0)[:n] if chunks else []

    return receive, calls


def test_returns_empty_when_nothing_arrives() -> None:
    clock = FakeClock()
    receive, calls = _source([], clock)
    batch = collect_batch(receive, max_size=8, first_wait_s=1.0, fill_wait_s=0.005, clock=clock)
    assert batch == []
    assert calls == [(8, 1.0)]


def test_fills_up_to_max_size_within_the_window() -> None:
    clock = FakeClock()
    receive, calls = _source([[1, 2], [3, 4, 5], [6, 7, 8, 9]], clock)
    batch = collect_batch(receive, max_size=6, first_wait_s=1.0, fill_wait_s=0.01, clock=clock)
    assert batch == [1, 2, 3, 4, 5, 6]
    assert [n for n, _ in calls] == [6, 4, 1]


def test_stops_filling_when_the_window_closes() -> None:
    clock = FakeClock()
    receive, _ = _source([[1], [2], [3], [4]], clock, step_s=0.004)
    batch = collect_batch(receive, max_size=10, first_wait_s=1.0, fill_wait_s=0.005, clock=clock)
    # window opens after the first item (t=4 ms), closes at 9 ms: receives at 4 and 8 ms fit
    assert batch == [1, 2, 3]


def test_a_full_first_receive_does_not_wait() -> None:
    clock = FakeClock()
    receive, calls = _source([[1, 2, 3]], clock)
    batch = collect_batch(receive, max_size=3, first_wait_s=1, fill_wait_s=1, clock=clock)
    assert batch == [1, 2, 3]
    assert len(calls) == 1


def test_apply_batch_gives_one_result_per_item() -> None:
    assert apply_batch([1, 2, 3], lambda xs: [x * 10 for x in xs], lambda x, e: -1) == [10, 20, 30]


@pytest.mark.parametrize(
    "func",
    [
        lambda xs: (_ for _ in ()).throw(RuntimeError("boom")),
        lambda xs: [1],  # wrong number of results
    ],
)
def test_a_batch_failure_reaches_every_item(func) -> None:  # type: ignore[no-untyped-def]
    failures: list[tuple[int, str]] = []

    def on_failure(item: int, exc: Exception) -> int:
        failures.append((item, type(exc).__name__))
        return -item

    assert apply_batch([1, 2, 3], func, on_failure) == [-1, -2, -3]
    assert [i for i, _ in failures] == [1, 2, 3]


def test_apply_batch_of_nothing_calls_nothing() -> None:
    def never(xs: Sequence[int]) -> list[int]:
        raise AssertionError("called")

    assert apply_batch([], never, lambda x, e: 0) == []
