"""kill -9 a worker mid-batch under load on the course API, with the default settings.

The fleet sees the process exit and makes the requests it held visible again at once (from the
receipts in its heartbeat); another worker answers them. Every request gets its 200 with the
bare model's label; the worst extra latency the kill caused is printed and written to
``test-artifacts/kill-worker.json`` (issue 14's goal: under 5 s).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import threading
import time
from pathlib import Path

import httpx
from tests.conftest import DevPhoto
from tests.helpers.server import run_server
from tests.reliability import support

REQUESTS = 300
CONCURRENCY = 50
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_a_worker_killed_mid_batch_costs_no_request_and_little_time(
    tmp_path: Path, dev_photos: list[DevPhoto], bare_labels: dict[str, str]
) -> None:
    uploads = [(p.path.name, p.path.read_bytes())
               for p in (dev_photos * (REQUESTS // len(dev_photos) + 1))[:REQUESTS]]
    state = tmp_path / "state"
    with run_server(state, "--workers", "2") as srv:
        support.wait_for_workers(state, 2)
        results: list[support.Timed] = []
        started = time.monotonic()
        load = threading.Thread(target=lambda: results.extend(
            support.post_all_timed(srv.url, uploads, concurrency=CONCURRENCY)))
        load.start()
        time.sleep(2)
        victim, held = _kill_a_worker_holding_requests(state)
        killed_at = time.monotonic()
        load.join(timeout=180)
        assert not load.is_alive(), "load did not finish"
        support.wait_for_empty_queue(srv.url)
        log = srv.log()
        dead = support.dead_letters(state)

    assert held, "the killed worker held no requests"
    assert f"worker {victim} exited with code -9" in log
    assert f"held by worker {victim}" in log, "the fleet did not release the victim's requests"
    statuses = [r.status for r in results]
    assert statuses == [200] * REQUESTS, [s for s in statuses if s != 200]
    for r in results:
        assert isinstance(r.outcome, httpx.Response)
        assert r.outcome.text == f"{Path(r.name).stem}:{bare_labels[r.name]}", r.name
    assert dead == 0
    _report(results, started, killed_at, len(held))


def _kill_a_worker_holding_requests(state: Path) -> tuple[str, list[str]]:
    """SIGKILL a worker whose heartbeat lists receipts of requests still in flight."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        in_flight = support.in_flight_request_ids(state)
        beats = support.heartbeats(state)
        for worker_id, pid in sorted(support.worker_pids(state).items()):
            receipts = beats[worker_id].get("receipts") or []
            if in_flight and isinstance(receipts, list) and receipts:
                os.kill(pid, signal.SIGKILL)
                return worker_id, [str(r) for r in receipts]
        time.sleep(0.005)
    raise AssertionError("no worker ever held requests")


def _report(results: list[support.Timed], started: float, killed_at: float, held: int) -> None:
    latencies = [r.latency_s for r in results]
    median = statistics.median(latencies)
    around_kill = [r.latency_s for r in results if r.sent_at <= killed_at <= r.sent_at
                   + r.latency_s]
    report = {
        "requests": len(results), "concurrency": CONCURRENCY, "held_by_victim": held,
        "killed_after_s": round(killed_at - started, 2),
        "p50_s": round(median, 3), "max_s": round(max(latencies), 3),
        "worst_extra_latency_s": round(max(latencies) - median, 3),
        "in_flight_at_kill": len(around_kill),
        "worst_in_flight_at_kill_s": round(max(around_kill, default=0.0), 3),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "kill-worker.json").write_text(json.dumps(report, indent=2))
    print("kill-worker:", json.dumps(report))
