"""``imgrec batch`` against a real ``imgrec serve``: a folder or an archive in, a table out,
and a run interrupted half-way resumed without sending anything twice."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import DevPhoto
from tests.helpers.server import RunningServer, run_server

from imgrec.batches.client import ServiceClient, run_batch, state_path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    state = tmp_path_factory.mktemp("batch-cli") / "state"
    with run_server(state, "--workers", "1") as srv:
        yield srv


@pytest.fixture
def folder(tmp_path: Path, dev_photos: list[DevPhoto]) -> Path:
    """24 dev photos in two subfolders (links, not copies), plus a file that is not an image."""
    root = tmp_path / "photos"
    for i, photo in enumerate(dev_photos[:24]):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / photo.path.name).symlink_to(photo.path)
    (root / "notes.txt").write_text("not a photo")
    return root


def _batch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imgrec", "batch", *args],
                          capture_output=True, text=True, timeout=300)


def test_a_folder_becomes_a_csv_with_one_row_per_photo(server: RunningServer, folder: Path,
                                                       dev_photos: list[DevPhoto],
                                                       tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    proc = _batch(str(folder), "--out", str(out), "--url", server.url, "--chunk", "10")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    by_name = {p.path.name: p.class_index for p in dev_photos[:24]}
    assert sorted(r["file"].split("/")[-1] for r in rows) == sorted(by_name)
    assert all(r["status"] == "done" for r in rows)
    right = sum(int(r["class_index"]) == by_name[r["file"].split("/")[-1]] for r in rows)
    assert right >= 18  # MobileNetV2 top-1 on these photos; the exact labels: test_batches
    assert "24/24 classified" in proc.stderr
    assert "worker-seconds per image:" in proc.stderr
    assert not state_path(out).exists()


def test_an_archive_and_jsonl_output(server: RunningServer, dev_photos: list[DevPhoto],
                                     tmp_path: Path) -> None:
    archive = tmp_path / "photos.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for photo in dev_photos[40:46]:
            tf.add(photo.path, arcname=f"set/{photo.path.name}")
    out = tmp_path / "results.jsonl"
    proc = _batch(str(archive), "--out", str(out), "--url", server.url, "-q")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["file"] for line in lines] == sorted(f"set/{p.path.name}"
                                                      for p in dev_photos[40:46])
    assert {line["status"] for line in lines} == {"done"}


def test_an_interrupted_run_resumes_without_resending(server: RunningServer, folder: Path,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "resumed.csv"
    client = ServiceClient(server.url)
    calls = []

    def interrupt_after_two_parts(uploaded: int, total: int, counts: dict[str, int]) -> None:
        calls.append(uploaded)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(client, str(folder), out, report=interrupt_after_two_parts, chunk_size=5)
    client.close()
    state = json.loads(state_path(out).read_text())
    assert sorted(state["parts_done"]) == [0, 1] and not out.exists()
    batch_id = state["batch_id"]

    proc = _batch(str(folder), "--out", str(out), "--url", server.url, "--chunk", "5")
    assert proc.returncode == 0, proc.stderr
    assert f"batch {batch_id}:" in proc.stderr
    doc = httpx.get(f"{server.url}/api/v1/batches/{batch_id}", timeout=10).json()
    assert doc["total"] == 24 and doc["counts"]["done"] == 24
    assert len(list(csv.DictReader(out.open()))) == 24


def test_a_missing_source_says_so(server: RunningServer, tmp_path: Path) -> None:
    proc = _batch(str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.csv"), "--url",
                  server.url)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
