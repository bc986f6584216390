"""Stored object keys are generated; the client's file name never becomes a path."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from tests.helpers.server import run_server

from imgrec import keys

HOSTILE_NAMES = [
    "../../etc/passwd",
    "../../../../../../tmp/imgrec-escape.jpg",
    "..\\..\\windows\\system32\\evil.jpg",
    "/absolute/path.jpg",
    "inputs/../results/forged.json",
    "name\x00with-nul.jpg",
    "%2e%2e%2f%2e%2e%2fencoded.jpg",
    "ünïcode 名前.jpg",
]
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def test_uploads_are_stored_under_generated_keys(tmp_path: Path, dev_images: Path) -> None:
    photo = (dev_images / "n01440764_tench.JPEG").read_bytes()
    state = tmp_path / "state"
    with run_server(state, "--workers", "1") as srv:
        ids = []
        for name in HOSTILE_NAMES:
            for route in ("/api/v1/classify", "/api/v1/jobs"):
                resp = httpx.post(f"{srv.url}{route}", files={"file": (name, photo)}, timeout=60)
                assert resp.status_code in (200, 202), (name, resp.text)
                ids.append(resp.json()["id"])
        course = httpx.post(f"{srv.url}/", files={"myfile": ("../../etc/passwd", photo)},
                            timeout=60)
        assert course.status_code == 200 and course.text == "passwd:tench"

    assert all(_HEX32.match(i) for i in ids) and len(set(ids)) == len(ids)
    objects = state / "objects"
    stored = sorted(p.relative_to(objects).as_posix() for p in objects.rglob("*") if p.is_file())
    for key in stored:
        top, _, rest = key.partition("/")
        assert f"{top}/" in (keys.INPUTS_PREFIX, keys.RESULTS_PREFIX, keys.HEARTBEATS_PREFIX,
                             keys.AUTOSCALE_PREFIX, keys.WEB_TIERS_PREFIX,
                             keys.CALLBACKS_PREFIX, keys.DEAD_LETTERS_PREFIX), key
        if top == "inputs":
            assert _HEX32.match(rest), key
        elif top == "results":
            assert rest.endswith(".json") and _HEX32.match(rest.removesuffix(".json")), key
    inputs = {k.partition("/")[2] for k in stored if k.startswith("inputs/")}
    assert set(ids) <= inputs
    for needle in ("passwd", "evil", "forged", "escape", "encoded", "absolute", "名前"):
        assert not any(needle in p.as_posix() for p in tmp_path.rglob("*")), needle
    assert not Path("/tmp/imgrec-escape.jpg").exists()


def test_job_lookups_accept_only_generated_ids(tmp_path: Path) -> None:
    with run_server(tmp_path / "state", "--workers", "0") as srv:
        for job_id in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "A" * 32, "0" * 31,
                       "inputs", "%00"):
            resp = httpx.get(f"{srv.url}/api/v1/jobs/{job_id}", timeout=10)
            assert resp.status_code == 404, job_id
            assert resp.json()["error"] in ("job_not_found", "not_found")
