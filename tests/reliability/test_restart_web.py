"""Restart the web tier during load: every job it accepted is answerable after the restart."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import DevPhoto
from tests.helpers.server import run_server
from tests.reliability import support

JOBS = 80


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_jobs_accepted_before_a_restart_are_answered_after_it(
    tmp_path: Path, dev_photos: list[DevPhoto], bare_top1: dict[str, int], how: signal.Signals
) -> None:
    uploads = [(p.path.name, p.path.read_bytes()) for p in (dev_photos * 2)[:JOBS]]
    state = tmp_path / "state"
    with run_server(state, "--workers", "1") as first:
        support.wait_for_workers(state, 1)
        accepted = support.classify_all(first.url, uploads, concurrency=16, route="/api/v1/jobs")
        backlog = support.health(first.url)
        first.process.send_signal(how)
        first.process.wait(timeout=60)

    jobs = {}
    for (name, _), resp in zip(uploads, accepted, strict=True):
        assert isinstance(resp, httpx.Response) and resp.status_code == 202, resp
        jobs[resp.json()["id"]] = name
    assert backlog["queue_visible"] or backlog["queue_in_flight"], "restarted after the load"

    with run_server(state, "--workers", "1") as second:
        answers = _poll_until_done(second.url, list(jobs), timeout_s=120)
    for job_id, answer in answers.items():
        assert answer["status"] == "done", answer
        assert answer["result"]["class_index"] == bare_top1[jobs[job_id]], jobs[job_id]


def _poll_until_done(url: str, ids: list[str], timeout_s: float) -> dict[str, dict[str, Any]]:
    answers: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=10) as client:
        while len(answers) < len(ids):
            for job_id in ids:
                if job_id not in answers:
                    job = client.get(f"/api/v1/jobs/{job_id}").json()
                    if job["status"] != "queued":
                        answers[job_id] = job
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(ids) - len(answers)} jobs unanswered after restart")
            time.sleep(0.1)
    return answers
