"""Storage is bounded: inputs and results go after the retention period, and a job past it
answers 410 with a body that says why (issue 14, item 3)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
from tests.helpers.server import run_server

from imgrec import keys
from imgrec.embedded.dir_store import DirectoryStore
from imgrec.retention import Janitor, is_expired

DAY_S = 86400.0


def test_the_janitor_deletes_what_is_past_retention_and_nothing_else(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    store = DirectoryStore(tmp_path / "objects")
    old, young = keys.new_request_id(now - 4 * DAY_S), keys.new_request_id(now - 1 * DAY_S)
    legacy = uuid.uuid4().hex  # an id without a time: its age is unknown, it is kept
    for request_id in (old, young, legacy):
        store.put(keys.input_key(request_id), b"image")
        store.put(keys.result_key(request_id), b"{}")
        store.put(keys.callback_key(request_id), b"{}")
        store.put(keys.dead_letter_key(request_id), b"{}")
    store.put(keys.heartbeat_key("w-1"), b"{}")
    for name, request_id in (("old", old), ("young", young)):  # idempotency keys' records
        store.put(keys.idempotency_record_key(name), json.dumps({"id": request_id}).encode())
    janitor = Janitor(store, retention_s=3 * DAY_S, interval_s=60, clock=lambda: now)

    assert janitor.sweep() == 5  # the old job's input, result, webhook, dead-letter, key record
    assert sorted(store.list()) == sorted([
        keys.input_key(young), keys.result_key(young), keys.callback_key(young),
        keys.dead_letter_key(young), keys.input_key(legacy), keys.result_key(legacy),
        keys.callback_key(legacy), keys.dead_letter_key(legacy), keys.heartbeat_key("w-1"),
        keys.idempotency_record_key("young"),
    ])
    assert janitor.sweep() == 0
    assert is_expired(old, 3 * DAY_S, now) and not is_expired(young, 3 * DAY_S, now)
    assert not is_expired(legacy, 0.0, now)


def test_a_job_past_retention_answers_410_after_the_janitor_removed_it(
    tmp_path: Path, dev_images: Path
) -> None:
    retention_s = 6.0
    photo = dev_images / "n01440764_tench.JPEG"
    state = tmp_path / "state"
    args = ("--workers", "1", "--retention-days", str(retention_s / DAY_S),
            "--janitor-interval-s", "0.5")
    with run_server(state, *args) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        job = client.post("/api/v1/jobs", files={"file": (photo.name, photo.read_bytes())})
        assert job.status_code == 202, job.text
        job_id = job.json()["id"]
        deadline = time.monotonic() + 60
        while (answer := client.get(f"/api/v1/jobs/{job_id}")).json()["status"] == "queued":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert answer.json()["result"]["label"] == "tench"
        objects = state / "objects"
        while (objects / keys.input_key(job_id)).exists() or \
                (objects / keys.result_key(job_id)).exists():
            assert time.monotonic() < deadline + retention_s, "the janitor never removed the job"
            time.sleep(0.2)
        gone = client.get(f"/api/v1/jobs/{job_id}")
        never = client.get(f"/api/v1/jobs/{keys.new_request_id()}")
        malformed = client.get("/api/v1/jobs/not-an-id")

    assert gone.status_code == 410, gone.text
    body = gone.json()
    assert body["error"] == "job_expired" and body["id"] == job_id
    assert "retention" in body["detail"] and "Submit the image again" in body["detail"]
    assert abs(body["expired_at"] - body["submitted_at"] - retention_s) < 0.01
    assert never.status_code == 404 and never.json()["error"] == "job_not_found"
    assert malformed.status_code == 404


def test_the_janitor_removes_batch_records_and_their_parts_past_retention(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    store = DirectoryStore(tmp_path / "objects")
    old, young = keys.new_request_id(now - 4 * DAY_S), keys.new_request_id(now - 1 * DAY_S)
    for batch_id in (old, young):
        store.put(keys.batch_key(batch_id), b"{}")
        store.put(keys.batch_part_key(batch_id, "c000001"), b"[]")
    janitor = Janitor(store, retention_s=3 * DAY_S, interval_s=60, clock=lambda: now)

    assert janitor.sweep() == 2
    assert sorted(store.list(keys.BATCHES_PREFIX)) == sorted(
        [keys.batch_key(young), keys.batch_part_key(young, "c000001")])
