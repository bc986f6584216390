"""Webhooks and live progress against a real ``imgrec serve`` and a real receiver on 127.0.0.1
(issue 16, items 4 and 5)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import DevPhoto
from tests.helpers.server import RunningServer, run_server
from tests.helpers.webhook_receiver import webhook_receiver

from imgrec import keys
from imgrec.web.webhooks import verify

SECRET = "test-webhook-secret"  # pragma: allowlist secret


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {"IMGREC_WEBHOOK_SECRET": SECRET, "IMGREC_WEBHOOK_ALLOW_PRIVATE": "true",
           "IMGREC_WEBHOOK_BACKOFF_S": "0.2", "IMGREC_WEBHOOK_MAX_ATTEMPTS": "3"}
    with run_server(tmp_path_factory.mktemp("push") / "state", "--workers", "1",
                    env=env) as srv:
        yield srv


def _submit(url: str, photo: Path, **params: str) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/jobs", params=params, timeout=60,
                      files={"file": (photo.name, photo.read_bytes())})


def _wait_job(url: str, job_id: str, until: str = "delivered") -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        job: dict[str, Any] = httpx.get(f"{url}/api/v1/jobs/{job_id}", timeout=10).json()
        if (job.get("callback") or {}).get("state") in (until, "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def _events(url: str, out: list[tuple[str, dict[str, Any]]] | None = None,
            ) -> list[tuple[str, dict[str, Any]]]:
    """The stream's events, until it ends (appended to ``out`` as they come)."""
    out = [] if out is None else out
    with httpx.stream("GET", url, timeout=60) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in resp.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                out.append((event, json.loads(line[6:])))
    return out


def test_a_finished_job_is_posted_signed_after_retries(
    server: RunningServer, dev_photos: list[DevPhoto]
) -> None:
    photo = dev_photos[1]
    with webhook_receiver(fail_first=2) as receiver:
        accepted = _submit(server.url, photo.path, callback_url=receiver.url)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        assert receiver.arrived.wait(60), receiver.deliveries
        job = _wait_job(server.url, job_id)

    assert len(receiver.deliveries) == 3  # two 500s, then accepted
    last = receiver.deliveries[-1]
    assert last.path == "/hook"
    assert verify(SECRET.encode(), last.headers["X-Imgrec-Signature"], last.body,
                  now=time.time())
    assert last.headers["X-Imgrec-Job"] == job_id
    assert [d.headers["X-Imgrec-Delivery-Attempt"] for d in receiver.deliveries] == ["1", "2", "3"]
    body = json.loads(last.body)
    assert body["id"] == job_id and body["status"] == "done"
    assert body["result"]["class_index"] == photo.class_index
    assert "callback" not in body
    assert job["callback"]["state"] == "delivered" and job["callback"]["attempts"] == 3
    assert job["callback"]["last_status"] == 204 and job["callback"]["url"] == receiver.url


def test_a_receiver_that_never_accepts_ends_failed(
    server: RunningServer, dev_photos: list[DevPhoto]
) -> None:
    with webhook_receiver(fail_first=100) as receiver:
        job_id = _submit(server.url, dev_photos[2].path, callback_url=receiver.url).json()["id"]
        job = _wait_job(server.url, job_id, until="failed")
    assert job["callback"]["state"] == "failed" and job["callback"]["attempts"] == 3
    assert job["callback"]["last_status"] == 500
    assert "HTTP 500" in job["callback"]["last_error"]
    assert len(receiver.deliveries) == 3


def test_bad_callback_urls_are_refused_with_400(server: RunningServer, dev_images: Path) -> None:
    photo = dev_images / "n01440764_tench.JPEG"
    resp = _submit(server.url, photo, callback_url="ftp://example.com/x")
    assert resp.status_code == 400 and resp.json()["error"] == "callback_refused"


def test_events_stream_queued_then_done_and_a_finished_job_once(
    server: RunningServer, dev_photos: list[DevPhoto]
) -> None:
    photo = dev_photos[3]
    job_id = _submit(server.url, photo.path).json()["id"]
    events = _events(f"{server.url}/api/v1/jobs/{job_id}/events")
    assert {e for e, _ in events} == {"state"}
    states = [d["status"] for _, d in events]
    assert states[-1] == "done" and set(states[:-1]) <= {"queued"} and len(states) <= 2
    assert events[-1][1]["result"]["class_index"] == photo.class_index

    again = _events(f"{server.url}/api/v1/jobs/{job_id}/events")
    assert again == [events[-1]]  # already finished: one event, then the stream ends

    many = _events(f"{server.url}/api/v1/job-events?id={job_id}&id={job_id}")
    assert many == [events[-1]]
    missing = httpx.get(f"{server.url}/api/v1/jobs/{keys.new_request_id()}/events")
    assert missing.status_code == 404 and missing.json()["error"] == "job_not_found"
    bad = httpx.get(f"{server.url}/api/v1/job-events?id=nope")
    assert bad.status_code == 400


def test_private_targets_are_refused_unless_allowed(tmp_path: Path, dev_images: Path) -> None:
    photo = dev_images / "n01440764_tench.JPEG"
    with run_server(tmp_path / "state", "--workers", "0",
                    env={"IMGREC_WEBHOOK_SECRET": SECRET}) as srv:
        resp = _submit(srv.url, photo, callback_url="http://127.0.0.1:9/hook")
        assert resp.status_code == 400
        assert resp.json()["error"] == "callback_refused"
        assert "IMGREC_WEBHOOK_ALLOW_PRIVATE" in resp.json()["detail"]
    with run_server(tmp_path / "state2", "--workers", "0") as srv:
        resp = _submit(srv.url, photo, callback_url="https://example.com/hook")
        assert resp.status_code == 400 and resp.json()["error"] == "webhooks_disabled"


def test_a_pending_webhook_is_delivered_by_the_next_web_tier(
    tmp_path: Path, dev_photos: list[DevPhoto]
) -> None:
    state = tmp_path / "state"
    photo = dev_photos[4]
    env = {"IMGREC_WEBHOOK_SECRET": SECRET, "IMGREC_WEBHOOK_ALLOW_PRIVATE": "true"}
    with webhook_receiver() as receiver:
        with run_server(state, "--workers", "0", env=env) as first:  # no workers: stays queued
            job_id = _submit(first.url, photo.path, callback_url=receiver.url).json()["id"]
        worker = subprocess.run(
            [sys.executable, "-m", "imgrec", "worker", "--state-dir", str(state),
             "--until-empty", "--threads", "1"], capture_output=True, text=True, timeout=120)
        assert worker.returncode == 0, worker.stderr[-3000:]
        assert receiver.deliveries == []  # the web tier that took the job is gone
        with run_server(state, "--workers", "0", env=env) as second:
            assert receiver.arrived.wait(30), "the next web tier did not deliver"
            job = _wait_job(second.url, job_id)
    assert job["callback"]["state"] == "delivered"
    [delivery] = receiver.deliveries
    assert json.loads(delivery.body)["result"]["class_index"] == photo.class_index


def test_open_event_streams_do_not_hold_up_a_shutdown(tmp_path: Path, dev_images: Path) -> None:
    photo = dev_images / "n01440764_tench.JPEG"
    env = {"IMGREC_SYNC_TIMEOUT_S": "60"}  # the graceful-shutdown limit follows it
    with run_server(tmp_path / "state", "--workers", "0", env=env) as srv:
        job_id = _submit(srv.url, photo).json()["id"]  # no workers: it stays queued
        seen: list[tuple[str, dict[str, Any]]] = []
        reader = threading.Thread(
            target=_events, args=(f"{srv.url}/api/v1/jobs/{job_id}/events", seen))
        reader.start()
        deadline = time.monotonic() + 10
        while not seen:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        started = time.monotonic()
        assert srv.stop() == 0
        stopped_s = time.monotonic() - started
        reader.join(timeout=10)
    assert not reader.is_alive()
    assert [d["status"] for _, d in seen] == ["queued"]
    assert stopped_s < 20, f"the server took {stopped_s:.1f} s to stop with a stream open"
