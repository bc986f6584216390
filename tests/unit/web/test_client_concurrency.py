"""Requests in progress per client, and the signal batch intake waits on: none in progress."""

from __future__ import annotations

import threading
import time

import pytest

from imgrec.web.errors import ApiError
from imgrec.web.limits import ClientConcurrency


def test_past_the_cap_a_client_gets_429_and_others_still_get_in() -> None:
    limits = ClientConcurrency(max_per_client=1)
    with limits.slot("a"):
        with pytest.raises(ApiError) as info, limits.slot("a"):
            pass
        assert info.value.status == 429
        with limits.slot("b"):
            pass


def test_waiting_until_idle_returns_once_the_last_request_is_done() -> None:
    limits = ClientConcurrency(max_per_client=4)
    assert limits.wait_until_idle(0.0)
    release = threading.Event()

    def request(client: str) -> None:
        with limits.slot(client):
            release.wait(5)

    threads = [threading.Thread(target=request, args=(c,)) for c in ("a", "a", "b")]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    start = time.monotonic()
    assert not limits.wait_until_idle(0.1)  # three in progress: the wait runs out
    assert time.monotonic() - start >= 0.09
    release.set()
    assert limits.wait_until_idle(2.0)
    for thread in threads:
        thread.join()


def test_batch_intake_waits_for_interactive_requests_within_its_budget() -> None:
    from imgrec.web.batch_intake import YieldToInteractive

    limits = ClientConcurrency(max_per_client=4)
    courtesy = YieldToInteractive(limits, max_wait_s=0.1, budget_s=0.25)
    with limits.slot("interactive"):
        start = time.monotonic()
        for _ in range(6):  # 0.1 + 0.1 + 0.05, then no more waiting
            courtesy.wait()
        took = time.monotonic() - start
    assert 0.23 < took < 0.6
    idle = YieldToInteractive(limits)
    start = time.monotonic()
    idle.wait()
    assert time.monotonic() - start < 0.05
