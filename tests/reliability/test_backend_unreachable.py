"""The queue or the store becomes unreachable: 503 with a clear message, then recovery by itself.

Embedded backend, realistic failures of a directory and a SQLite file:
- the queue file is locked by another process (a backup, a stuck tool) for longer than the
  queue's busy timeout: writes fail with "database is locked";
- the store's directory refuses writes (``chattr +i``, as a filesystem that went away or a
  permission change would; root ignores plain permissions).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.helpers.server import RunningServer, run_server
from tests.reliability import support

PHOTO = "n01530575_brambling.JPEG"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    state = tmp_path_factory.mktemp("unreachable") / "state"
    with run_server(state, "--workers", "1") as srv:
        support.wait_for_workers(state, 1)
        yield srv


def _classify(server: RunningServer, dev_images: Path) -> httpx.Response:
    photo = dev_images / PHOTO
    return httpx.post(f"{server.url}/api/v1/classify",
                      files={"file": (photo.name, photo.read_bytes())}, timeout=60)


def _assert_503(resp: httpx.Response, words: str) -> None:
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert body["error"] == "backend_unavailable"
    assert "unreachable" in body["detail"] and words in body["detail"], body
    assert int(resp.headers["retry-after"]) > 0


def test_a_locked_queue_gives_503_then_recovers(server: RunningServer, dev_images: Path) -> None:
    assert _classify(server, dev_images).status_code == 200
    inputs = server.state_dir / "objects" / "inputs"
    stored_before = sorted(inputs.iterdir())
    holder = sqlite3.connect(server.state_dir / "queues.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        _assert_503(_classify(server, dev_images), "database is locked")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert sorted(inputs.iterdir()) == stored_before, "an image was left without its request"
    resp = _classify(server, dev_images)
    assert resp.status_code == 200 and resp.json()["label"] == "brambling", resp.text
    support.wait_for_empty_queue(server.url)


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr (e2fsprogs)")
def test_a_store_that_refuses_writes_gives_503_then_recovers(
    server: RunningServer, dev_images: Path
) -> None:
    inputs = server.state_dir / "objects" / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(["chattr", "+i", str(inputs)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i not possible here: {made.stderr.strip()}")
    try:
        _assert_503(_classify(server, dev_images), "cannot write object")
    finally:
        subprocess.run(["chattr", "-i", str(inputs)], check=True)
    resp = _classify(server, dev_images)
    assert resp.status_code == 200 and resp.json()["label"] == "brambling", resp.text
    support.wait_for_empty_queue(server.url)
