"""The web tier's APIs against a real ``imgrec serve`` on 127.0.0.1 with the real model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import DevPhoto
from tests.helpers.server import RunningServer, run_server

from imgrec.model.classifier import Classification, load_classifier

MAX_UPLOAD = 2_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    state = tmp_path_factory.mktemp("api") / "state"
    env = {"IMGREC_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)}
    with run_server(state, "--workers", "2", env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def bare_model(dev_photos: list[DevPhoto]) -> dict[str, Classification]:
    classifier = load_classifier("mobilenet_v2")
    outcomes = classifier.classify_images([p.path.read_bytes() for p in dev_photos])
    return {
        p.path.name: o for p, o in zip(dev_photos, outcomes, strict=True)
        if isinstance(o, Classification)
    }


@pytest.mark.parametrize("field", ["myfile", "inputFile"])
def test_course_api_answers_stem_and_label(server: RunningServer, dev_images: Path,
                                           field: str) -> None:
    photo = dev_images / "n01530575_brambling.JPEG"
    resp = httpx.post(f"{server.url}/", files={field: (photo.name, photo.read_bytes())}, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.text == "n01530575_brambling:brambling"


def test_json_api_gives_label_index_top5_and_timings(server: RunningServer,
                                                      dev_images: Path) -> None:
    photo = dev_images / "n01440764_tench.JPEG"
    resp = httpx.post(f"{server.url}/api/v1/classify",
                      files={"file": (photo.name, photo.read_bytes())}, timeout=60)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["label"] == "tench" and body["class_index"] == 0
    assert len(body["id"]) == 32 and body["file"] == photo.name
    assert len(body["top5"]) == 5
    probs = [p["probability"] for p in body["top5"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    assert {"queue_ms", "decode_ms", "inference_ms", "total_ms"} <= set(body["timings_ms"])


def test_jobs_are_accepted_then_answered(server: RunningServer, dev_images: Path) -> None:
    photo = dev_images / "n01530575_brambling.JPEG"
    resp = httpx.post(f"{server.url}/api/v1/jobs",
                      files={"file": (photo.name, photo.read_bytes())}, timeout=60)
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert resp.headers["location"] == job["poll"] == f"/api/v1/jobs/{job['id']}"
    deadline = time.monotonic() + 30
    while True:
        state = httpx.get(f"{server.url}{job['poll']}", timeout=10).json()
        if state["status"] != "queued" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert state["status"] == "done"
    assert state["result"]["label"] == "brambling"


@pytest.mark.parametrize("job_id", ["0" * 32, "not-an-id", "../../etc/passwd"])
def test_unknown_jobs_are_404_with_a_json_error(server: RunningServer, job_id: str) -> None:
    resp = httpx.get(f"{server.url}/api/v1/jobs/{job_id}", timeout=10)
    assert resp.status_code == 404
    assert resp.json()["error"] in ("job_not_found", "not_found")


def test_health_and_openapi_docs(server: RunningServer) -> None:
    health = httpx.get(f"{server.url}/healthz", timeout=10).json()
    assert health["status"] == "ok"
    schema = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    expected = {"/", "/api/v1/classify", "/api/v1/jobs", "/api/v1/jobs/{job_id}"}
    assert expected <= set(schema["paths"])
    assert httpx.get(f"{server.url}/docs", timeout=10).status_code == 200


def _post(server: RunningServer, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/classify", timeout=60, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make_request", "status", "code"),
    [
        (lambda photo: {"files": {"wrong": ("a.jpg", photo)}}, 400, "missing_file"),
        (lambda photo: {"data": {"file": "not a file"}}, 400, "missing_file"),
        (lambda photo: {"content": b""}, 400, "missing_file"),
        (lambda photo: {"files": [("file", ("a.jpg", photo)), ("file", ("b.jpg", photo))]},
         400, "too_many_files"),
        (lambda photo: {"files": {"file": ("empty.jpg", b"")}}, 400, "empty_file"),
        (lambda photo: {"files": {"file": ("notes.jpg", b"hello, I am text")}}, 415,
         "not_an_image"),
        (lambda photo: {"files": {"file": ("big.jpg", photo * 40)}}, 413, "file_too_large"),
        (lambda photo: {"files": {"file": ("cut.jpg", photo[: len(photo) // 3])}}, 422,
         "corrupt_image"),
    ],
    ids=["wrong-field", "field-not-a-file", "empty-body", "two-files", "zero-bytes", "text",
         "too-large", "truncated"],
)
def test_bad_input_gets_a_clear_json_error(
    server: RunningServer, dev_images: Path, make_request: Callable[[bytes], dict[str, Any]],
    status: int, code: str,
) -> None:
    photo = (dev_images / "n01440764_tench.JPEG").read_bytes()
    resp = _post(server, **make_request(photo))
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == code
    assert len(body["detail"]) > 10


def test_bad_input_leaves_nothing_on_the_queue(server: RunningServer) -> None:
    before = httpx.get(f"{server.url}/healthz", timeout=10).json()
    _post(server, files={"file": ("x.jpg", b"text")})
    after = httpx.get(f"{server.url}/healthz", timeout=10).json()
    assert after["queue_visible"] == before["queue_visible"] == 0


def test_100_concurrent_requests_match_the_bare_model(
    server: RunningServer, dev_photos: list[DevPhoto], bare_model: dict[str, Classification]
) -> None:
    async def classify_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
            return await asyncio.gather(*(
                client.post("/api/v1/classify",
                            files={"file": (p.path.name, p.path.read_bytes())})
                for p in dev_photos
            ))

    responses = asyncio.run(classify_all())
    assert [r.status_code for r in responses] == [200] * len(dev_photos)
    correct = 0
    for photo, resp in zip(dev_photos, responses, strict=True):
        body = resp.json()
        assert body["class_index"] == bare_model[photo.path.name].class_index, photo.path.name
        correct += body["class_index"] == photo.class_index
    assert correct / len(dev_photos) >= 0.75


def test_slow_answers_get_504_with_a_job_id_to_poll(tmp_path: Path, dev_images: Path) -> None:
    photo = dev_images / "n01440764_tench.JPEG"
    env = {"IMGREC_SYNC_TIMEOUT_S": "1"}
    with run_server(tmp_path / "state", "--workers", "0", env=env) as srv:
        resp = httpx.post(f"{srv.url}/api/v1/classify",
                          files={"file": (photo.name, photo.read_bytes())}, timeout=30)
        assert resp.status_code == 504
        body = resp.json()
        assert body["error"] == "timeout" and body["poll"] == f"/api/v1/jobs/{body['job_id']}"
        job = httpx.get(f"{srv.url}{body['poll']}", timeout=10).json()
        assert job["status"] == "queued"


def test_requests_accepted_before_a_restart_are_processed_after_it(
    tmp_path: Path, dev_images: Path
) -> None:
    state = tmp_path / "state"
    photo = dev_images / "n01530575_brambling.JPEG"
    with run_server(state, "--workers", "0") as first:
        resp = httpx.post(f"{first.url}/api/v1/jobs",
                          files={"file": (photo.name, photo.read_bytes())}, timeout=30)
        job_id = resp.json()["id"]
    with run_server(state, "--workers", "1") as second:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = httpx.get(f"{second.url}/api/v1/jobs/{job_id}", timeout=10).json()
            if job["status"] != "queued":
                break
            time.sleep(0.1)
        assert job["status"] == "done" and job["result"]["label"] == "brambling"
