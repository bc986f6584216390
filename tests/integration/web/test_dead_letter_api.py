"""``/api/v1/dead-letters`` against a real ``imgrec serve``: a request that really died is
listed with why, replayed under its id and then classified by a real worker (issue 16, item 7).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from tests.conftest import DevPhoto
from tests.helpers.dead_letters import kill_request
from tests.helpers.server import run_server
from tests.helpers.webhook_receiver import Receiver, webhook_receiver

from imgrec import keys
from imgrec.backend import open_backend
from imgrec.config import load_settings


def _wait_listed(client: httpx.Client, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:  # the web tier's responder records it within its poll
        rows = client.get("/api/v1/dead-letters").json()["dead_letters"]
        found = [r for r in rows if r["request_id"] == request_id]
        if found:
            return dict(found[0])
        assert time.monotonic() < deadline, rows
        time.sleep(0.2)


def test_list_show_replay_and_purge_over_http(tmp_path: Path, dev_photos: list[DevPhoto]) -> None:
    state = tmp_path / "state"
    photo = dev_photos[0]
    args = ("--workers", "0", "--max-receives", "1")
    with run_server(state, *args) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        backend = open_backend(load_settings(state_dir=state, max_receives=1))
        try:
            died = kill_request(backend, photo.path.read_bytes())
            lost = kill_request(backend)
            backend.store.delete(lost.key)
        finally:
            backend.close()
        row = _wait_listed(client, died.request_id)
        assert row["receive_count"] == 1 and row["input_present"] is True
        assert row["state"] == "dead" and "never finished" in str(row["reason"])
        assert _wait_listed(client, lost.request_id)["input_present"] is False
        job = client.get(f"/api/v1/jobs/{died.request_id}").json()
        assert job["status"] == "failed" and job["error"] == "processing_failed"

        shown = client.get(f"/api/v1/dead-letters/{died.request_id}")
        assert shown.status_code == 200 and shown.json() == row
        missing = client.get(f"/api/v1/dead-letters/{keys.new_request_id()}")
        assert missing.status_code == 404 and missing.json()["error"] == "dead_letter_not_found"

        gone = client.post(f"/api/v1/dead-letters/{lost.request_id}/replay")
        assert gone.status_code == 410 and gone.json()["error"] == "input_gone"
        replayed = client.post(f"/api/v1/dead-letters/{died.request_id}/replay")
        assert replayed.status_code == 202, replayed.text
        assert replayed.json()["state"] == "replayed" and replayed.json()["replays"] == 1
        assert client.get(f"/api/v1/jobs/{died.request_id}").json()["status"] == "queued"

        worker = subprocess.run(
            [sys.executable, "-m", "imgrec", "worker", "--state-dir", str(state),
             "--until-empty", "--threads", "1"], capture_output=True, text=True, timeout=120)
        assert worker.returncode == 0, worker.stderr[-3000:]
        done = client.get(f"/api/v1/jobs/{died.request_id}").json()
        assert done["status"] == "done", done
        assert done["result"]["class_index"] == photo.class_index

        assert client.delete(f"/api/v1/dead-letters/{lost.request_id}").json() == {"purged": 1}
        assert client.delete(f"/api/v1/dead-letters/{lost.request_id}").status_code == 404
        assert client.delete("/api/v1/dead-letters").json() == {"purged": 1}
        assert client.get("/api/v1/dead-letters").json() == {"dead_letters": []}


def _take_and_drop(state: Path) -> None:
    """Take the one queued request once without finishing it: the queue dead-letters it."""
    backend = open_backend(load_settings(state_dir=state, max_receives=1))
    try:
        deadline = time.monotonic() + 10
        while not backend.requests.receive(1, wait_s=1, visibility_s=0):
            assert time.monotonic() < deadline
        assert backend.requests.receive(1, wait_s=0.5) == []
    finally:
        backend.close()


def _run_worker(state: Path) -> None:
    worker = subprocess.run(
        [sys.executable, "-m", "imgrec", "worker", "--state-dir", str(state), "--until-empty",
         "--threads", "1"], capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr[-3000:]


def _statuses(receiver: Receiver, job_id: str, count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while True:
        mine = [json.loads(d.body)["status"] for d in receiver.deliveries
                if d.headers["X-Imgrec-Job"] == job_id]
        if len(mine) >= count:
            return mine
        assert time.monotonic() < deadline, mine
        time.sleep(0.1)


def test_a_replayed_job_delivers_its_webhook_again(
    tmp_path: Path, dev_photos: list[DevPhoto]
) -> None:
    state = tmp_path / "state"
    env = {"IMGREC_WEBHOOK_SECRET": "k",  # pragma: allowlist secret
           "IMGREC_WEBHOOK_ALLOW_PRIVATE": "true"}
    with (webhook_receiver() as receiver,
          run_server(state, "--workers", "0", "--max-receives", "1", env=env) as srv,
          httpx.Client(base_url=srv.url, timeout=30) as client):
        ids = []
        for photo in dev_photos[5:7]:
            resp = client.post("/api/v1/jobs", params={"callback_url": receiver.url},
                               files={"file": (photo.path.name, photo.path.read_bytes())})
            ids.append(resp.json()["id"])
            _take_and_drop(state)
        by_api, by_cli = ids
        assert _statuses(receiver, by_api, 1) == ["failed"]
        assert _statuses(receiver, by_cli, 1) == ["failed"]

        assert client.post(f"/api/v1/dead-letters/{by_api}/replay").status_code == 202
        cli = subprocess.run([sys.executable, "-m", "imgrec", "dlq", "replay", by_cli,
                              "--state-dir", str(state), "--max-receives", "1"],
                             capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stderr
        assert client.get(f"/api/v1/jobs/{by_cli}").json()["callback"]["state"] == "pending"
        _run_worker(state)
        assert _statuses(receiver, by_api, 2) == ["failed", "done"]
        assert _statuses(receiver, by_cli, 2) == ["failed", "done"]
