"""Disk full or read-only state directory: a clear error at start-up or 507, no corruption.

The state directory is a small tmpfs mounted by the test (needs root, as in this project's CI
container; skipped elsewhere): filled up to the last byte, mounted read-only at start-up, or
with a read-only bind mount over the object store while serving.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.helpers.server import RunningServer, run_server
from tests.reliability import support

PHOTO = "n01530575_brambling.JPEG"


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *options: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    opts = ",".join((f"size={size}", *options))
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _classify(server: RunningServer, dev_images: Path) -> httpx.Response:
    photo = dev_images / PHOTO
    return httpx.post(f"{server.url}/api/v1/classify",
                      files={"file": (photo.name, photo.read_bytes())}, timeout=60)


def _fill(directory: Path) -> Path:
    """Write zeros until the filesystem has not one byte left."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def _assert_507(resp: httpx.Response) -> None:
    assert resp.status_code == 507, resp.text
    body = resp.json()
    assert body["error"] == "insufficient_storage"
    assert "disk full or read-only" in body["detail"], body


def _assert_not_corrupt(state: Path) -> None:
    with sqlite3.connect(state / "queues.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    objects = state / "objects"
    assert not list(objects.rglob("*.part")), "a partial object was left behind"
    for result in (objects / "results").glob("*.json"):
        json.loads(result.read_bytes())


def test_start_up_on_a_read_only_state_dir_fails_clearly(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "4m", "ro") as state:
        run = subprocess.run(
            [sys.executable, "-m", "imgrec", "serve", "--state-dir", str(state / "state"),
             "--port", "0", "--workers", "0"],
            capture_output=True, text=True, timeout=60,
        )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "error:" in run.stderr and "read-only" in run.stderr.lower(), run.stderr
    assert "Traceback" not in run.stderr


def test_disk_full_or_read_only_while_serving_gives_507_and_recovers(
    tmp_path: Path, dev_images: Path
) -> None:
    with tmpfs(tmp_path / "disk", "24m") as disk:
        state = disk / "state"
        with run_server(state, "--workers", "1") as srv:
            support.wait_for_workers(state, 1)
            assert _classify(srv, dev_images).status_code == 200

            filler = _fill(disk)
            _assert_507(_classify(srv, dev_images))
            filler.unlink()
            assert _classify(srv, dev_images).json()["label"] == "brambling"

            # The object store's directory turns read-only (a read-only bind mount over it;
            # the queue file, open for writing, keeps the filesystem itself from remounting).
            objects = state / "objects"
            subprocess.run(["mount", "--bind", str(objects), str(objects)], check=True)
            try:
                subprocess.run(["mount", "-o", "remount,ro,bind", str(objects)], check=True)
                _assert_507(_classify(srv, dev_images))
            finally:
                subprocess.run(["umount", str(objects)], check=True)
            resp = _classify(srv, dev_images)
            assert resp.status_code == 200 and resp.json()["label"] == "brambling", resp.text
            support.wait_for_empty_queue(srv.url)
            assert support.dead_letters(state) == 0
            log = srv.log()
        _assert_not_corrupt(state)
    assert "Traceback" not in log, log[-4000:]
