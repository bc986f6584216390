"""The bad-input matrix: one test per row of docs/reliability.md's table, against ``imgrec serve``.

Each row gets its documented outcome (classified exactly as the bare model does, or a 4xx JSON
error that says what is wrong); after each one the request queue and the dead-letter queue are
empty, the same worker process is still serving, and a good photo is answered right after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.helpers.server import RunningServer, run_server
from tests.reliability import support

from imgrec.model.classifier import Classification, Classifier, load_classifier

MAX_UPLOAD = 2_000_000
GOOD_PHOTO = "n01440764_tench.JPEG"
BOUNDARY = "imgrec-test-boundary"


@dataclass(frozen=True)
class Row:
    """A bad input: how to send it, and either (status, error code) or None for 'classified'."""

    build: Callable[[bytes], dict[str, object]]
    outcome: tuple[int, str] | None
    echoed_name: str | None = None


def _file(name: str, data: bytes, field: str = "file") -> dict[str, object]:
    return {"files": {field: (name, data)}}


def _raw_multipart(parts: str) -> dict[str, object]:
    body = parts.replace("\n", "\r\n").encode()
    return {"content": body,
            "headers": {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}}


LONG_NAME = "x" * 996 + ".jpg"
ROWS: dict[str, Row] = {
    "empty-body": Row(lambda p: {"content": b""}, (400, "missing_file")),
    "empty-multipart-body": Row(lambda p: _raw_multipart(""), (400, "missing_file")),
    "missing-field": Row(
        lambda p: _raw_multipart(
            f'--{BOUNDARY}\nContent-Disposition: form-data; name="comment"\n\nhello\n'
            f"--{BOUNDARY}--\n"
        ),
        (400, "missing_file"),
    ),
    "wrong-field-name": Row(lambda p: _file("a.jpg", p, field="image"), (400, "missing_file")),
    "several-files-one-field": Row(
        lambda p: {"files": [("file", ("a.jpg", p)), ("file", ("b.jpg", p))]},
        (400, "too_many_files"),
    ),
    "several-files-two-fields": Row(
        lambda p: {"files": [("file", ("a.jpg", p)), ("myfile", ("b.jpg", p))]},
        (400, "too_many_files"),
    ),
    "zero-byte-file": Row(lambda p: _file("empty.jpg", b""), (400, "empty_file")),
    "text-named-jpg": Row(lambda p: _file("notes.jpg", b"just some text\n" * 20),
                          (415, "not_an_image")),
    "pdf-named-jpg": Row(lambda p: _file("doc.jpg", support.MINIMAL_PDF), (415, "not_an_image")),
    "truncated-jpeg": Row(lambda p: _file("cut.jpg", p[: len(p) // 3]), (422, "corrupt_image")),
    "png-with-alpha": Row(lambda p: _file("alpha.png", support.converted(p, "RGBA", "PNG")), None),
    "grayscale-jpeg": Row(lambda p: _file("gray.jpg", support.converted(p, "L", "JPEG")), None),
    "png-16-bit": Row(lambda p: _file("deep.png", support.converted(p, "I;16", "PNG")), None),
    "cmyk-jpeg": Row(lambda p: _file("cmyk.jpg", support.converted(p, "CMYK", "JPEG")), None),
    "animated-gif": Row(lambda p: _file("anim.gif", support.animated_gif(p)), None),
    "webp": Row(lambda p: _file("photo.webp", support.converted(p, "RGB", "WEBP")), None),
    "decompression-bomb": Row(
        lambda p: _file("bomb.png", support.blank_png(100_000, 100_000, color_type=0, rows=64)),
        (422, "image_too_large"),
    ),
    "over-size-limit": Row(lambda p: _file("big.jpg", p * (MAX_UPLOAD // len(p) + 2)),
                           (413, "file_too_large")),
    "name-unicode": Row(lambda p: _file("Schleie 魚 🐟 é.jpg", p), None, "Schleie 魚 🐟 é.jpg"),
    "name-spaces": Row(lambda p: _file("  my tench photo .jpg", p), None, "  my tench photo .jpg"),
    "name-dot-dot-slash": Row(lambda p: _file("../../etc/passwd", p), None, "../../etc/passwd"),
    "name-1000-chars": Row(lambda p: _file(LONG_NAME, p), None, LONG_NAME[-255:]),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    state = tmp_path_factory.mktemp("bad-input") / "state"
    env = {"IMGREC_MAX_UPLOAD_BYTES": str(MAX_UPLOAD), "IMGREC_VISIBILITY_TIMEOUT_S": "5"}
    with run_server(state, "--workers", "1", env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def workers_at_start(server: RunningServer) -> dict[str, int]:
    return support.wait_for_workers(server.state_dir, 1)


@pytest.fixture(scope="module")
def bare_model() -> Classifier:
    return load_classifier("mobilenet_v2", threads=1)


@pytest.fixture(scope="module")
def photo(dev_images: Path) -> bytes:
    return (dev_images / GOOD_PHOTO).read_bytes()


@pytest.mark.parametrize("row_id", list(ROWS))
def test_bad_input_gets_its_documented_answer(
    server: RunningServer, workers_at_start: dict[str, int], bare_model: Classifier,
    photo: bytes, row_id: str,
) -> None:
    row = ROWS[row_id]
    request = row.build(photo)
    resp = httpx.post(f"{server.url}/api/v1/classify", timeout=60, **request)  # type: ignore[arg-type]

    if row.outcome is None:
        assert resp.status_code == 200, resp.text
        sent = request["files"]["file"][1]  # type: ignore[index]
        [expected] = bare_model.classify_images([sent])
        assert isinstance(expected, Classification)
        assert resp.json()["class_index"] == expected.class_index
        if row.echoed_name is not None:
            assert resp.json()["file"] == row.echoed_name
    else:
        status, code = row.outcome
        assert resp.status_code == status, resp.text
        assert resp.headers["content-type"].startswith("application/json")
        body = resp.json()
        assert body["error"] == code
        assert len(body["detail"]) > 15, body

    _assert_service_unharmed(server, workers_at_start, photo)


def _assert_service_unharmed(
    server: RunningServer, workers_at_start: dict[str, int], photo: bytes
) -> None:
    support.wait_for_empty_queue(server.url)
    assert support.dead_letters(server.state_dir) == 0
    assert support.worker_pids(server.state_dir) == workers_at_start, server.log()[-2000:]
    resp = httpx.post(f"{server.url}/api/v1/classify",
                      files={"file": (GOOD_PHOTO, photo)}, timeout=60)
    assert resp.status_code == 200 and resp.json()["label"] == "tench", resp.text
