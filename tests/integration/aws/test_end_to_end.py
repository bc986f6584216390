"""The whole service on moto: web tier + S3 + SQS, two local worker processes, the real model."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.conftest import DevPhoto
from tests.helpers.aws_adapters import Endpoint
from tests.helpers.server import classify_each, run_server

from imgrec.aws.provision import UpOptions, open_stack
from imgrec.model.classifier import Classification, load_classifier

pytestmark = pytest.mark.aws
PHOTOS = 10


@contextmanager
def local_workers(count: int, log_dir: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``imgrec worker --backend aws`` processes, as the instances run it; SIGTERM at the end."""
    procs = []
    for i in range(count):
        log = open(log_dir / f"worker-{i}.log", "wb")  # noqa: SIM115 - closed below
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "imgrec", "worker", "--backend", "aws", "--stack", "t1",
             "--worker-id", f"local-{i}", "--threads", "1"],
            stdout=log, stderr=subprocess.STDOUT))
        log.close()
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_web_tier_and_workers_on_moto_answer_every_photo(
    moto: Endpoint, wheel: Path, tmp_path: Path, dev_photos: list[DevPhoto]
) -> None:
    open_stack("t1", None).up(UpOptions(wheel=wheel))
    photos = dev_photos[:PHOTOS]
    classifier = load_classifier("mobilenet_v2", threads=1)
    expected = []
    for outcome in classifier.classify_images([p.path.read_bytes() for p in photos]):
        assert isinstance(outcome, Classification)
        expected.append(outcome.top5[0].class_index)

    with (
        run_server(tmp_path / "state", "--backend", "aws", "--stack", "t1", "--workers", "0")
        as server,
        local_workers(2, tmp_path) as workers,
    ):
        got = classify_each(server.url, [p.path for p in photos])
        assert all(w.poll() is None for w in workers)
    assert got == expected
    outputs = open_stack("t1", None).names.outputs_bucket
    results = moto.client("s3").list_objects_v2(Bucket=outputs, Prefix="results/")
    assert results["KeyCount"] == PHOTOS
