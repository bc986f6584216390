"""The batch API against a real ``imgrec serve`` (embedded backend, real model, one worker)."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.conftest import DevPhoto
from tests.helpers.server import RunningServer, run_server

from imgrec import keys
from imgrec.model.classifier import Classification, load_classifier

MAX_ITEMS = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    state = tmp_path_factory.mktemp("batches") / "state"
    env = {"IMGREC_MAX_BATCH_ITEMS": str(MAX_ITEMS)}
    with run_server(state, "--workers", "1", env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def expected(dev_photos: list[DevPhoto]) -> dict[str, int]:
    """The bare model's top-1 class of each dev photo (what the service must answer)."""
    classifier = load_classifier("mobilenet_v2")
    photos = dev_photos[:12]
    outcomes = classifier.classify_images([p.path.read_bytes() for p in photos])
    return {p.path.name: o.top5[0].class_index for p, o in zip(photos, outcomes, strict=True)
            if isinstance(o, Classification)}


def _wait_done(url: str, batch_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        doc: dict[str, Any] = httpx.get(f"{url}/api/v1/batches/{batch_id}", timeout=10).json()
        if doc["status"] == "done" or time.monotonic() > deadline:
            return doc
        time.sleep(0.2)


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_files_and_an_archive_become_one_batch_with_results_as_csv_and_jsonl(
    server: RunningServer, dev_photos: list[DevPhoto], expected: dict[str, int]
) -> None:
    photos = dev_photos[:12]
    files = [("file", (p.path.name, p.path.read_bytes())) for p in photos[:4]]
    archive = _zip({f"more/{p.path.name}": p.path.read_bytes() for p in photos[4:]}
                   | {"more/notes.txt": b"not an image", "more/.DS_Store": b"junk"})
    files.append(("file", ("more.zip", archive)))
    resp = httpx.post(f"{server.url}/api/v1/batches", files=files, timeout=60)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert resp.headers["location"] == body["poll"] == f"/api/v1/batches/{body['id']}"
    assert len(body["items"]) == 13  # 4 files + 8 photos + notes.txt; .DS_Store skipped
    assert all(keys.is_request_id(i["id"]) for i in body["items"])

    doc = _wait_done(server.url, body["id"])
    assert doc["status"] == "done", doc
    assert doc["total"] == 13 and doc["counts"] == {"queued": 0, "done": 12, "failed": 1}

    table = httpx.get(f"{server.url}{body['results']}", timeout=10)
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [r["file"] for r in rows] == [i["file"] for i in body["items"]]
    answered = {r["file"].rsplit("/", 1)[-1]: int(r["class_index"])
                for r in rows if r["status"] == "done"}
    assert answered == expected
    [bad] = [r for r in rows if r["status"] == "failed"]
    assert bad["file"] == "more/notes.txt" and bad["error"] == "not_an_image"

    lines = httpx.get(f"{server.url}/api/v1/batches/{body['id']}",
                      headers={"Accept": "application/x-ndjson"}, timeout=10).text.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [i["id"] for i in body["items"]]


def test_a_resent_part_adds_nothing(server: RunningServer, dev_photos: list[DevPhoto]) -> None:
    created = httpx.post(f"{server.url}/api/v1/batches", timeout=10)
    assert created.status_code == 201, created.text
    batch_id = created.json()["id"]
    assert created.json()["items"] == []
    photo = dev_photos[0].path
    sent = [httpx.post(f"{server.url}/api/v1/batches/{batch_id}/items",
                       data={"part": "c000001"},
                       files=[("file", (photo.name, photo.read_bytes()))], timeout=30)
            for _ in range(2)]
    assert [r.status_code for r in sent] == [200, 200]
    first, second = (r.json() for r in sent)
    assert first["added"] is True and second["added"] is False
    assert first["items"] == second["items"] and len(first["items"]) == 1
    doc = _wait_done(server.url, batch_id)
    assert doc["total"] == 1 and doc["counts"]["done"] == 1


def test_events_stream_progress_then_done(server: RunningServer,
                                          dev_photos: list[DevPhoto]) -> None:
    files = [("file", (p.path.name, p.path.read_bytes())) for p in dev_photos[20:26]]
    batch = httpx.post(f"{server.url}/api/v1/batches", files=files, timeout=60).json()
    events: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream("GET", f"{server.url}{batch['events']}", timeout=60) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in resp.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[len("data: "):])))
    assert events[0][0] == "progress" and events[-1][0] == "done"
    assert events[-1][1]["counts"]["done"] == 6
    done_counts = [doc["counts"]["done"] for _, doc in events]
    assert done_counts == sorted(done_counts)


def _corrupt_zip() -> bytes:
    good = _zip({"a.jpg": b"a" * 200})
    return good[:40] + b"\0" * 100 + good[140:]


@pytest.mark.parametrize(("files", "status", "code"), [
    ([("file", ("bad.zip", _corrupt_zip()))], 400, "bad_archive"),
    ([("file", ("empty.zip", _zip({".hidden": b"x"})))], 400, "empty_archive"),
    ([("file", (f"{i}.jpg", b"x")) for i in range(MAX_ITEMS + 1)], 413, "too_many_items"),
])
def test_bad_uploads_get_clear_json_errors(server: RunningServer, files: list[Any], status: int,
                                           code: str) -> None:
    resp = httpx.post(f"{server.url}/api/v1/batches", files=files, timeout=30)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == code and resp.json()["detail"]


def test_unknown_batches_and_formats(server: RunningServer) -> None:
    missing = httpx.get(f"{server.url}/api/v1/batches/{keys.new_request_id()}", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"] == "batch_not_found"
    assert httpx.get(f"{server.url}/api/v1/batches/nope", timeout=10).status_code == 404
    batch_id = httpx.post(f"{server.url}/api/v1/batches", timeout=10).json()["id"]
    bad = httpx.get(f"{server.url}/api/v1/batches/{batch_id}?format=xml", timeout=10)
    assert bad.status_code == 422 and "format" in bad.json()["detail"]
    source = httpx.post(f"{server.url}/api/v1/batches", data={"source": "s3://bucket/p/"},
                        timeout=10)
    assert source.status_code == 400 and source.json()["error"] == "source_not_supported"


def test_status_shows_the_bulk_lane_and_worker_seconds_per_image(server: RunningServer,
                                                                 dev_photos: list[DevPhoto]
                                                                 ) -> None:
    files = [("file", (p.path.name, p.path.read_bytes())) for p in dev_photos[30:34]]
    batch = httpx.post(f"{server.url}/api/v1/batches", files=files, timeout=60).json()
    _wait_done(server.url, batch["id"])
    time.sleep(1.5)  # a heartbeat or two: the processed counts reach the autoscaler
    status = httpx.get(f"{server.url}/api/v1/status", timeout=10).json()
    assert status["bulk"] == {"visible": 0, "in_flight": 0}
    cost = status["cost"]
    assert cost["images"] >= 4 and cost["worker_seconds"] > 0
    assert cost["worker_seconds_per_image"] == pytest.approx(
        cost["worker_seconds"] / cost["images"], rel=1e-3)
    assert cost["worker_kind"] == "local" and cost["price_per_1000_images"] is None
