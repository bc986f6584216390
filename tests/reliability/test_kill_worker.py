"""kill -9 a worker mid-batch: its requests come back after the visibility timeout and are
answered; none is lost, none answered twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
from tests.conftest import DevPhoto
from tests.helpers.server import run_server
from tests.reliability import support

REQUESTS = 300


def test_a_worker_killed_mid_batch_costs_no_request(
    tmp_path: Path, dev_photos: list[DevPhoto], bare_top1: dict[str, int]
) -> None:
    uploads = [(p.path.name, p.path.read_bytes())
               for p in (dev_photos * (REQUESTS // len(dev_photos) + 1))[:REQUESTS]]
    env = {"IMGREC_VISIBILITY_TIMEOUT_S": "3", "IMGREC_SYNC_TIMEOUT_S": "90"}
    state = tmp_path / "state"
    with run_server(state, "--workers", "2", env=env) as srv:
        support.wait_for_workers(state, 2)
        results: list[httpx.Response | Exception] = []
        load = threading.Thread(target=lambda: results.extend(
            support.classify_all(srv.url, uploads, concurrency=64)))
        load.start()
        victim, held = _kill_a_busy_worker(state)
        load.join(timeout=180)
        assert not load.is_alive(), "load did not finish"
        support.wait_for_empty_queue(srv.url)
        log = srv.log()
        dead = support.dead_letters(state)

    assert held, "the killed worker held no requests"
    assert f"worker {victim} exited with code -9" in log
    assert len(uploads) == REQUESTS
    support.assert_each_answered_once(results, uploads, bare_top1)
    assert dead == 0


def _kill_a_busy_worker(state: Path) -> tuple[str, set[str]]:
    """SIGKILL a worker while batches are in flight; return its id and the requests held.

    Under this load both workers hold a batch nearly all the time (the queue does not record
    which worker holds which message, so the victim is simply the first one).
    """
    pids = support.worker_pids(state)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        held = support.in_flight_request_ids(state)
        if len(held) >= 2:
            victim, pid = sorted(pids.items())[0]
            os.kill(pid, signal.SIGKILL)
            return victim, held
        time.sleep(0.005)
    raise AssertionError("no requests were ever in flight")
