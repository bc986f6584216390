"""The fast upload path (``web/fast_uploads.py``) answers exactly as FastAPI's routes do.

Two web tiers on 127.0.0.1 share one embedded backend and one worker (real model): one with the
fast path (the default), one without it. Every request goes to both; status, content type,
the headers a client acts on and the body must be the same (request ids and timings aside).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tests.helpers.server import free_port

from imgrec.backend import open_backend
from imgrec.config import Settings
from imgrec.model.classifier import load_classifier
from imgrec.web.app import create_app
from imgrec.web.fast_uploads import FastUploads
from imgrec.worker.loop import Worker

API_KEY = "fast-path-key"  # pragma: allowlist secret
KEY = {"X-API-Key": API_KEY}
MAX_UPLOAD = 300_000
PHOTO = "n01440764_tench.JPEG"
OTHER = "n01530575_brambling.JPEG"


@dataclass(frozen=True)
class Pair:
    fast: str
    plain: str
    fast_app: FastAPI
    plain_app: FastAPI


@contextmanager
def _serving(app: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test web tier did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    settings = Settings(state_dir=tmp_path_factory.mktemp("fast") / "state",
                        max_upload_bytes=MAX_UPLOAD, api_key=API_KEY, sync_timeout_s=60,
                        bulk_nice=0)
    fast_app, plain_app = create_app(settings), create_app(settings, fast_uploads=False)
    backend = open_backend(settings)
    stop = threading.Event()
    worker = Worker(backend, load_classifier("mobilenet_v2", threads=1), settings)
    worker_thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    worker_thread.start()
    try:
        with _serving(fast_app) as fast, _serving(plain_app) as plain:
            yield Pair(fast, plain, fast_app, plain_app)
    finally:
        stop.set()
        worker_thread.join(60)
        backend.close()


def _both(pair: Pair, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, ...]:
    return tuple(httpx.request(method, base + path, timeout=60, **kwargs)
                 for base in (pair.fast, pair.plain))


def _same_shape(fast: httpx.Response, plain: httpx.Response) -> None:
    assert fast.status_code == plain.status_code, (fast.text, plain.text)
    for header in ("content-type", "www-authenticate", "retry-after", "connection"):
        assert fast.headers.get(header) == plain.headers.get(header), header


def _photo(dev_images: Path, name: str = PHOTO) -> bytes:
    return (dev_images / name).read_bytes()


def test_the_course_route_answers_the_same(pair: Pair, dev_images: Path) -> None:
    fast, plain = _both(pair, "POST", "/", headers=KEY,
                        files={"myfile": (PHOTO, _photo(dev_images))})
    _same_shape(fast, plain)
    assert fast.status_code == 200 and fast.content == plain.content == b"n01440764_tench:tench"


def test_the_json_route_answers_the_same(pair: Pair, dev_images: Path) -> None:
    fast, plain = _both(pair, "POST", "/api/v1/classify", headers=KEY,
                        files={"file": (PHOTO, _photo(dev_images))})
    _same_shape(fast, plain)
    assert fast.status_code == 200, fast.text
    a, b = fast.json(), plain.json()
    assert list(a) == list(b) and a["id"] != b["id"]
    assert sorted(a["timings_ms"]) == sorted(b["timings_ms"])
    for body in (a, b):
        body.pop("id")
        body.pop("timings_ms")
    assert a == b and a["label"] == "tench" and a["file"] == PHOTO


@pytest.mark.parametrize(
    ("path", "make"),
    [
        ("/", lambda p: {"files": {"wrong": ("a.jpg", p)}}),
        ("/api/v1/classify", lambda p: {"files": {"wrong": ("a.jpg", p)}}),
        ("/api/v1/classify", lambda p: {"data": {"file": "not a file"}}),
        ("/api/v1/classify", lambda p: {"content": b"raw bytes"}),
        ("/", lambda p: {"content": b"--x\r\nbroken", "headers": {
            "content-type": "multipart/form-data; boundary=x"}}),
        ("/", lambda p: {"content": b"", "headers": {"content-type": "multipart/form-data"}}),
        ("/api/v1/classify", lambda p: {"files": [("file", ("a.jpg", p)), ("file", ("b.jpg", p))]}),
        ("/", lambda p: {"files": {"myfile": ("empty.jpg", b"")}}),
        ("/", lambda p: {"files": {"myfile": ("notes.jpg", b"hello, I am text")}}),
        ("/api/v1/classify", lambda p: {"files": {"file": ("cut.jpg", p[: len(p) // 3])}}),
        ("/api/v1/classify", lambda p: {"files": {"file": ("big.jpg", p * 4)}}),
        ("/", lambda p: {"files": {"myfile": ("huge.jpg", p * 40)}}),
        ("/", lambda p: {"files": {"myfile": ("a.jpg", p)}, "headers": {"X-Deadline-S": "soon"}}),
        ("/api/v1/classify", lambda p: {"files": {"file": ("a.jpg", p)},
                                        "headers": {"X-Deadline-S": "-1"}}),
        ("/", lambda p: {"files": {"myfile": ("a.jpg", p)},
                         "headers": {"Idempotency-Key": "k" * 300}}),
    ],
    ids=["course-wrong-field", "json-wrong-field", "field-not-a-file", "not-multipart",
         "broken-multipart", "no-boundary", "two-files", "zero-bytes", "text", "truncated",
         "over-file-limit", "over-body-limit", "bad-deadline", "negative-deadline",
         "bad-idempotency-key"],
)
def test_errors_are_the_same_bytes(pair: Pair, dev_images: Path, path: str,
                                   make: Any) -> None:
    request = make(_photo(dev_images))
    headers = {**KEY, **request.pop("headers", {})}
    fast, plain = _both(pair, "POST", path, headers=headers, **request)
    _same_shape(fast, plain)
    assert fast.status_code >= 400
    a, b = fast.json(), plain.json()
    if "id" in a:  # a worker's answer (a corrupt image) names its job
        assert a.pop("id") != b.pop("id")
        assert fast.content.replace(fast.content.split(b'"id":')[1][:34], b"") == \
            plain.content.replace(plain.content.split(b'"id":')[1][:34], b"")
    else:
        assert fast.content == plain.content
    assert a == b and a["error"]


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"},
                                     {"Authorization": "Bearer wrong"}],
                         ids=["no-key", "wrong-key", "wrong-bearer"])
@pytest.mark.parametrize("path", ["/", "/api/v1/classify"])
def test_the_api_key_is_checked_the_same(pair: Pair, dev_images: Path, path: str,
                                         headers: dict[str, str]) -> None:
    fast, plain = _both(pair, "POST", path, headers=headers,
                        files={"file": ("a.jpg", _photo(dev_images))})
    _same_shape(fast, plain)
    assert fast.status_code == 401 and fast.content == plain.content


def test_an_idempotency_key_makes_one_job_on_the_fast_path(pair: Pair, dev_images: Path) -> None:
    def post(name: str) -> httpx.Response:
        return httpx.post(f"{pair.fast}/api/v1/classify", timeout=60,
                          headers={**KEY, "Idempotency-Key": "fast-path-once"},
                          files={"file": (name, _photo(dev_images, name))})

    first, again, other = post(PHOTO), post(PHOTO), post(OTHER)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert first.json()["id"] == again.json()["id"]
    assert other.status_code == 409 and other.json()["error"] == "idempotency_key_reused"


def test_other_methods_and_paths_still_reach_fastapi(pair: Pair) -> None:
    for method, path in (("GET", "/api/v1/classify"), ("PUT", "/"), ("POST", "/nowhere")):
        fast, plain = _both(pair, method, path, headers=KEY)
        _same_shape(fast, plain)
        assert fast.status_code in (404, 405) and fast.content == plain.content


def test_the_schema_still_documents_both_routes(pair: Pair) -> None:
    def outermost(app: FastAPI) -> object:
        return app.user_middleware[0].cls

    assert outermost(pair.fast_app) is FastUploads
    assert outermost(pair.plain_app) is not FastUploads
    assert pair.fast_app.openapi() == pair.plain_app.openapi()
    paths = pair.fast_app.openapi()["paths"]
    assert "multipart/form-data" in paths["/"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in paths["/api/v1/classify"]["post"]["requestBody"]["content"]
