"""A killed web tier leaves nothing behind (issue 14, item 4).

A synchronous client whose web tier is killed gets a connection error; its request was already
queued, so it is still classified and can be polled on the next web tier. The dead tier's
reply queue is deleted by a live one once the dead tier's heartbeat is older than the grace
period.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
from tests.conftest import DevPhoto
from tests.helpers.server import run_server
from tests.reliability import support

from imgrec import keys

GRACE_S = 3.0
PRESENCE = ("--web-heartbeat-s", "0.5", "--reply-queue-grace-s", str(GRACE_S))


def _reply_queues(state: Path) -> set[str]:
    with sqlite3.connect(f"file:{state / 'queues.db'}?mode=ro", uri=True, timeout=10) as conn:
        rows = conn.execute("SELECT name FROM queues WHERE name LIKE ?",
                            (f"{keys.REPLY_QUEUE_PREFIX}%",)).fetchall()
    return {str(name) for (name,) in rows}


def test_a_killed_web_tier_leaves_a_pollable_job_and_no_reply_queue(
    tmp_path: Path, dev_photos: list[DevPhoto], bare_top1: dict[str, int]
) -> None:
    photo = dev_photos[3]
    state = tmp_path / "state"
    outcome: list[httpx.Response | Exception] = []
    # No workers: the synchronous request waits in the queue while its web tier is killed.
    with run_server(state, "--workers", "0", *PRESENCE) as first:
        [dead_queue] = _reply_queues(state)
        client = threading.Thread(target=lambda: outcome.extend(support.classify_all(
            first.url, [(photo.path.name, photo.path.read_bytes())], concurrency=1)))
        client.start()
        deadline = time.monotonic() + 30
        while support.queue_counts(state).get(keys.REQUEST_QUEUE, 0) == 0:
            assert time.monotonic() < deadline, "the request was never queued"
            time.sleep(0.02)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=30)
        client.join(timeout=30)
    [waited] = outcome
    assert isinstance(waited, httpx.TransportError), waited  # a connection error, no answer
    [job_id] = [p.name for p in (state / "objects" / "inputs").iterdir()]
    assert (state / "objects" / keys.web_tier_key(dead_queue)).exists()

    with run_server(state, "--workers", "1", *PRESENCE) as second:
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=second.url, timeout=30) as http:
            while (job := http.get(f"/api/v1/jobs/{job_id}").json())["status"] == "queued":
                assert time.monotonic() < deadline, "the job was never answered"
                time.sleep(0.1)
        assert job["status"] == "done", job
        assert job["result"]["class_index"] == bare_top1[photo.path.name]
        while dead_queue in _reply_queues(state):
            assert time.monotonic() < deadline, "the dead web tier's reply queue is still there"
            time.sleep(0.2)
        live = _reply_queues(state)
        records = sorted(p.name for p in (state / "objects" / keys.WEB_TIERS_PREFIX).iterdir())
        log = second.log()
    assert len(live) == 1 and dead_queue not in live
    assert records == [f"{name}.json" for name in live]
    assert f"web tier of reply queue {dead_queue} silent" in log
    assert support.queue_counts(state).get(dead_queue, 0) == 0  # its messages went with it
