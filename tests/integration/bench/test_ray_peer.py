"""The Ray Serve peer answers like imgrec (same body, same answers) and leaves nothing behind.

Needs the Ray venv (``make bench PEERS=ray`` creates ``.venv-ray``); skipped without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from bench.peers.ray_serve import DEFAULT_PYTHON, PeerError, RayServe, descendants
from tests.helpers.paths import dev_images

from imgrec.model.classifier import Classification, load_classifier


def test_descendants_finds_grandchildren_and_not_strangers() -> None:
    code = "import subprocess, time; subprocess.Popen(['sleep', '30']); time.sleep(30)"
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while len(descendants(parent.pid)) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        found = descendants(parent.pid)
        assert len(found) == 1 and parent.pid not in found
        [sleeper] = found
        assert Path(f"/proc/{sleeper}/cmdline").read_bytes().startswith(b"sleep")
        assert sleeper in descendants(os.getpid()) and os.getpid() not in found
    finally:
        for pid in descendants(parent.pid):
            subprocess.run(["kill", str(pid)], check=False)
        parent.kill()
        parent.wait()


def test_a_missing_venv_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(PeerError, match="make bench PEERS=ray"):
        RayServe(tmp_path / "bin" / "python")


@pytest.mark.slow
@pytest.mark.skipif(not DEFAULT_PYTHON.is_file(), reason="no .venv-ray (make bench PEERS=ray)")
def test_ray_serve_classifies_the_dev_photos_like_imgrec(tmp_path: Path) -> None:
    photos = dev_images()[:3]
    local = load_classifier("mobilenet_v2", threads=1).classify_images(
        [p.path.read_bytes() for p in photos])
    with RayServe(log_path=tmp_path / "ray.log") as ray:
        ray.wait_ready()
        assert ray.version.startswith("2.")
        family = descendants(ray.pid)
        assert len(family) >= 3  # GCS, raylet, proxy, controller, replicas
        base = ray.url.rstrip("/")
        for photo, mine in zip(photos, local, strict=True):
            assert isinstance(mine, Classification)
            files = {"myfile": (photo.path.name, photo.path.read_bytes(), "image/jpeg")}
            plain = httpx.post(base + "/", files=files, timeout=60)
            assert plain.status_code == 200
            assert plain.text.startswith(photo.path.stem + ":")
            as_json = httpx.post(base + "/api/v1/classify", files=files, timeout=60).json()
            assert plain.text == f"{photo.path.stem}:{as_json['label']}"
            assert as_json["class_index"] == mine.class_index
        broken = httpx.post(base + "/", files={"myfile": ("x.jpg", b"nope", "image/jpeg")},
                            timeout=60)
        assert broken.status_code == 400
    time.sleep(1)
    assert not [pid for pid in family if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(") ")[1][:1]]
    assert not ray.temp_dir.exists()
