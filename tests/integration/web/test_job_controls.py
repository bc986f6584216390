"""Idempotency keys, deadlines and cancel on a real ``imgrec serve`` with the real model
(issue 16, items 1-3), embedded backend. The moto run is in tests/integration/aws."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers.server import RunningServer, run_server

from imgrec import keys

TENCH = "n01440764_tench.JPEG"
BRAMBLING = "n01530575_brambling.JPEG"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("jobs") / "state", "--workers", "1") as srv:
        yield srv


def _photo(dev_images: Path, name: str) -> tuple[str, bytes]:
    return name, (dev_images / name).read_bytes()


def _post(url: str, route: str, photo: tuple[str, bytes], field: str = "file",
          **headers: str) -> httpx.Response:
    return httpx.post(f"{url}{route}", files={field: photo}, timeout=60,
                      headers={k.replace("_", "-"): v for k, v in headers.items()})


def _settled(url: str, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (job := httpx.get(f"{url}/api/v1/jobs/{job_id}", timeout=10).json())["status"] \
            == "queued":
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job  # type: ignore[no-any-return]


def _count(state: Path, prefix: str) -> int:
    folder = state / "objects" / prefix
    return sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0


def test_a_job_submitted_twice_with_one_key_is_one_job(server: RunningServer,
                                                       dev_images: Path) -> None:
    photo = _photo(dev_images, BRAMBLING)
    inputs_before = _count(server.state_dir, "inputs")
    first = _post(server.url, "/api/v1/jobs", photo, Idempotency_Key="job-key-1")
    again = _post(server.url, "/api/v1/jobs", photo, Idempotency_Key="job-key-1")
    assert first.status_code == again.status_code == 202, again.text
    assert first.json() == again.json()
    assert again.headers["location"] == f"/api/v1/jobs/{first.json()['id']}"
    assert _settled(server.url, first.json()["id"])["result"]["label"] == "brambling"
    assert _count(server.state_dir, "inputs") == inputs_before + 1  # one image stored, one job

    other = _post(server.url, "/api/v1/jobs", _photo(dev_images, TENCH),
                  Idempotency_Key="job-key-1")
    assert other.status_code == 409, other.text
    assert other.json()["error"] == "idempotency_key_reused"
    assert other.json()["id"] == first.json()["id"]
    fresh = _post(server.url, "/api/v1/jobs", photo, Idempotency_Key="job-key-2")
    assert fresh.status_code == 202 and fresh.json()["id"] != first.json()["id"]
    assert _settled(server.url, fresh.json()["id"])["status"] == "done"


def test_concurrent_sync_calls_with_one_key_get_one_answer(server: RunningServer,
                                                           dev_images: Path) -> None:
    photo = _photo(dev_images, TENCH)
    results_before = _count(server.state_dir, "results")
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(
            lambda _: _post(server.url, "/api/v1/classify", photo, Idempotency_Key="sync-1"),
            range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert {a.json()["label"] for a in answers} == {"tench"}
    results = _count(server.state_dir, "results")
    assert results == results_before + 1  # classified once

    later = _post(server.url, "/api/v1/classify", photo, Idempotency_Key="sync-1")
    assert later.status_code == 200 and later.json()["id"] == answers[0].json()["id"]
    reused = _post(server.url, "/api/v1/classify", _photo(dev_images, BRAMBLING),
                   Idempotency_Key="sync-1")
    assert reused.status_code == 409 and reused.json()["error"] == "idempotency_key_reused"


def test_the_course_api_takes_a_key_too(server: RunningServer, dev_images: Path) -> None:
    photo = _photo(dev_images, BRAMBLING)
    answers = [_post(server.url, "/", photo, "myfile", Idempotency_Key="course-1")
               for _ in range(2)]
    assert [a.text for a in answers] == ["n01530575_brambling:brambling"] * 2


@pytest.mark.parametrize(("header", "value"), [
    ("Idempotency-Key", "k" * 256), ("Idempotency-Key", ""), ("Idempotency-Key", "tab\tinside"),
    ("Idempotency-Key", b"caf\xe9"), ("X-Deadline-S", "soon"), ("X-Deadline-S", "0"),
    ("X-Deadline-S", "-3"), ("X-Deadline-S", "nan"), ("X-Deadline-S", "inf"),
    ("X-Deadline-S", "1e9"),
])
def test_bad_keys_and_deadlines_are_400(server: RunningServer, dev_images: Path,
                                        header: str, value: str | bytes) -> None:
    photo = _photo(dev_images, TENCH)
    for route in ("/api/v1/jobs", "/api/v1/classify"):
        resp = httpx.post(f"{server.url}{route}", files={"file": photo}, timeout=30,
                          headers=[(header.encode(), value if isinstance(value, bytes)
                                    else value.encode())])
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"] in ("invalid_idempotency_key", "invalid_deadline")
        assert header in resp.json()["detail"]


def test_deadlines_and_cancels_stop_work_before_inference(tmp_path: Path,
                                                          dev_images: Path) -> None:
    state = tmp_path / "state"
    photo = _photo(dev_images, TENCH)
    env = {"IMGREC_SYNC_TIMEOUT_S": "1"}
    with run_server(state, "--workers", "0", env=env) as idle:  # a backlog, no worker
        short = _post(idle.url, "/api/v1/jobs", photo, X_Deadline_S="0.5").json()["id"]
        patient = _post(idle.url, "/api/v1/jobs", photo).json()["id"]
        waited = _post(idle.url, "/api/v1/classify", photo)  # its deadline: the 1 s wait
        assert waited.status_code == 504 and waited.json()["error"] == "timeout"
        started = time.monotonic()
        hurried = _post(idle.url, "/api/v1/classify", photo, X_Deadline_S="0.3")
        assert time.monotonic() - started < 0.9  # the request's own deadline ended the wait
        assert hurried.status_code == 408 and hurried.json()["error"] == "deadline_exceeded"
        assert _post(idle.url, "/api/v1/jobs", photo, X_Deadline_S="600").status_code == 202

        doomed = _post(idle.url, "/api/v1/jobs", photo).json()["id"]
        cancel = httpx.delete(f"{idle.url}/api/v1/jobs/{doomed}", timeout=10)
        assert cancel.status_code == 200, cancel.text
        assert cancel.json()["status"] == "cancelled" and cancel.json()["error"] == "cancelled"
        assert httpx.get(f"{idle.url}/api/v1/jobs/{doomed}").json()["status"] == "cancelled"
        assert httpx.delete(f"{idle.url}/api/v1/jobs/{doomed}").json()["status"] == "cancelled"
        assert not (state / "objects" / keys.input_key(doomed)).exists()
        unknown = httpx.delete(f"{idle.url}/api/v1/jobs/{keys.new_request_id()}")
        assert unknown.status_code == 404 and unknown.json()["error"] == "job_not_found"
        old = keys.new_request_id(time.time() - 30 * 86400)
        expired = httpx.delete(f"{idle.url}/api/v1/jobs/{old}")
        assert expired.status_code == 410 and expired.json()["error"] == "job_expired"
        assert httpx.get(f"{idle.url}/api/v1/jobs/{short}").json()["status"] == "queued"
        time.sleep(max(0.0, 1.2 - (time.monotonic() - started)))

    with run_server(state, "--workers", "1", env=env) as busy:
        states = {job_id: _settled(busy.url, job_id) for job_id in
                  (short, patient, waited.json()["job_id"], hurried.json()["job_id"], doomed)}
        finished = httpx.delete(f"{busy.url}/api/v1/jobs/{patient}")

    assert states[patient]["status"] == "done"
    assert states[patient]["result"]["label"] == "tench"
    for job_id in (short, waited.json()["job_id"], hurried.json()["job_id"]):
        assert states[job_id]["status"] == "deadline_exceeded", states[job_id]
        assert states[job_id]["error"] == "deadline_exceeded" and states[job_id]["result"] is None
    assert states[doomed]["status"] == "cancelled" and states[doomed]["result"] is None
    assert finished.status_code == 409, finished.text
    assert finished.json()["error"] == "job_finished" and finished.json()["job_status"] == "done"


def test_the_openapi_schema_documents_keys_deadlines_cancel_and_states(
    server: RunningServer,
) -> None:
    schema = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    for route in ("/", "/api/v1/classify", "/api/v1/jobs"):
        post = schema["paths"][route]["post"]
        assert {p["name"] for p in post["parameters"]} >= {"Idempotency-Key", "X-Deadline-S"}
        assert {"400", "408", "409", "504"} <= set(post["responses"]), route
    cancel = schema["paths"]["/api/v1/jobs/{job_id}"]["delete"]
    assert {"200", "404", "409", "410"} <= set(cancel["responses"])
    status = schema["components"]["schemas"]["Job"]["properties"]["status"]
    assert set(status["enum"]) == {"queued", "done", "failed", "cancelled", "deadline_exceeded"}
    assert "deadline_exceeded" in status["description"]


def test_a_waiting_sync_request_whose_job_is_cancelled_answers_409_at_once(
    tmp_path: Path, dev_images: Path
) -> None:
    state = tmp_path / "state"
    photo = _photo(dev_images, TENCH)
    with run_server(state, "--workers", "0") as idle, ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        waiting = pool.submit(_post, idle.url, "/api/v1/classify", photo)
        inputs = state / "objects" / "inputs"

        def stored() -> list[str]:  # not the store's partial (temporary) files
            return [p.name for p in inputs.iterdir() if not p.name.startswith(".")]

        while not (inputs.is_dir() and stored()):
            assert time.monotonic() - started < 20
            time.sleep(0.02)
        [job_id] = stored()
        cancel = httpx.delete(f"{idle.url}/api/v1/jobs/{job_id}", timeout=10)
        answer = waiting.result(timeout=20)
        elapsed = time.monotonic() - started

    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"] == "cancelled" and answer.json()["id"] == job_id
    assert elapsed < 15  # not the 30 s wait limit
