"""The backlog gate's Retry-After comes from the measured throughput."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from imgrec.embedded.sqlite_queue import SqliteBroker
from imgrec.web.backlog import BacklogGate, retry_after_s
from imgrec.web.deadline import DeadlineCalls
from imgrec.web.errors import ApiError


@pytest.mark.parametrize(("backlog", "rate", "expected"), [
    (5000, 100.0, 50),    # 50 s of work at 100/s
    (10, 100.0, 1),       # never under a second
    (10**6, 10.0, 300),   # never over five minutes
    (100, 0.0, 10),       # nothing answered yet: 10 s
])
def test_retry_after_is_the_time_to_work_the_backlog_off(
    backlog: int, rate: float, expected: int
) -> None:
    assert retry_after_s(backlog, rate) == expected


def test_the_gate_refuses_at_the_cap_and_counts_what_it_accepted(tmp_path: Path) -> None:
    queue = SqliteBroker(tmp_path / "q.db").open("requests")
    queue.send(["a"] * 3)
    calls = DeadlineCalls(timeout_s=5)
    now = [0.0]
    gate = BacklogGate(queue, calls, max_backlog=5, rate_per_s=lambda: 2.0,
                       refresh_s=1.0, clock=lambda: now[0])

    async def scenario() -> ApiError:
        first = await gate.admit()  # reads the depth: 3, then counts this one
        second = await gate.admit()  # 4 before it: no new reading yet
        with pytest.raises(ApiError) as refused:
            await gate.admit()  # 5: two are being admitted, none queued yet
        first.queued()
        second.close()  # failed: no longer counted
        assert gate.backlog == 4
        await gate.admit()
        return refused.value

    try:
        error = asyncio.run(scenario())
    finally:
        calls.close()
    assert error.status == 503 and error.code == "overloaded"
    assert error.headers == {"Retry-After": "3"}  # 5 requests at 2/s
    assert "cap is 5" in error.detail and "2 requests/s" in error.detail
