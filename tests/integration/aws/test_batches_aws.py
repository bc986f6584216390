"""Batches on the AWS backend (moto): aws up makes the bulk lane, a batch from uploaded files
and one from an s3:// prefix are classified by a local ``imgrec worker --backend aws``."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import DevPhoto
from tests.helpers.aws_adapters import Endpoint
from tests.helpers.server import run_server
from tests.integration.aws.test_end_to_end import local_workers

from imgrec.aws.provision import UpOptions, open_stack

pytestmark = pytest.mark.aws


def _wait_done(url: str, poll: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        doc: dict[str, Any] = httpx.get(f"{url}{poll}", timeout=10).json()
        if doc["status"] == "done" or time.monotonic() > deadline:
            return doc
        time.sleep(0.3)


def test_aws_up_makes_the_bulk_lane_with_the_shared_dead_letters_and_batch_expiry(
    moto: Endpoint, wheel: Path
) -> None:
    stack = open_stack("t1", None)
    stack.up(UpOptions(wheel=wheel, max_receives=4))
    n = stack.names
    sqs = moto.client("sqs")
    url = sqs.get_queue_url(QueueName=n.bulk_queue)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
    assert n.dead_letter_queue in attrs["Attributes"]["RedrivePolicy"]
    rules = moto.client("s3").get_bucket_lifecycle_configuration(
        Bucket=n.outputs_bucket)["Rules"]
    assert "batches/" in {r["Filter"]["Prefix"] for r in rules}
    assert n.bulk_queue in {s.name for s in stack.status()}
    stack.down()
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=n.bulk_queue)


def test_batches_of_files_and_of_an_s3_prefix_on_moto(
    moto: Endpoint, wheel: Path, tmp_path: Path, dev_photos: list[DevPhoto]
) -> None:
    open_stack("t1", None).up(UpOptions(wheel=wheel))
    s3 = moto.client("s3")
    s3.create_bucket(Bucket="user-photos")
    for photo in dev_photos[10:14]:
        s3.put_object(Bucket="user-photos", Key=f"trip/{photo.path.name}",
                      Body=photo.path.read_bytes())
    s3.put_object(Bucket="user-photos", Key="trip/notes.txt", Body=b"skipped: not an image")
    s3.put_object(Bucket="user-photos", Key="elsewhere/x.jpg", Body=b"outside the prefix")

    with (
        run_server(tmp_path / "state", "--backend", "aws", "--stack", "t1", "--workers", "0")
        as server,
        local_workers(1, tmp_path),
    ):
        files = [("file", (p.path.name, p.path.read_bytes())) for p in dev_photos[:4]]
        uploaded = httpx.post(f"{server.url}/api/v1/batches", files=files, timeout=60)
        assert uploaded.status_code == 201, uploaded.text
        from_s3 = httpx.post(f"{server.url}/api/v1/batches",
                             data={"source": "s3://user-photos/trip/"}, timeout=60)
        assert from_s3.status_code == 201, from_s3.text
        for created in (uploaded.json(), from_s3.json()):
            doc = _wait_done(server.url, created["poll"])
            assert doc["status"] == "done" and doc["counts"]["done"] == 4, doc
        table = httpx.get(f"{server.url}{from_s3.json()['results']}", timeout=30).text
        missing = httpx.post(f"{server.url}/api/v1/batches",
                             data={"source": "s3://no-such-bucket-here/x"}, timeout=30)
        out = tmp_path / "trip.csv"
        cli = subprocess.run([sys.executable, "-m", "imgrec", "batch", "s3://user-photos/trip/",
                              "--out", str(out), "--url", server.url],
                             capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    assert "4/4 classified" in cli.stderr
    # The workers here are not the service's fleet (--workers 0): it cannot count their time.
    assert "worker-seconds per image: not known" in cli.stderr
    assert len(list(csv.DictReader(out.open()))) == 4
    rows = list(csv.DictReader(io.StringIO(table)))
    assert sorted(r["file"] for r in rows) == sorted(
        f"s3://user-photos/trip/{p.path.name}" for p in dev_photos[10:14])
    assert missing.status_code == 400 and missing.json()["error"] == "source_unreadable"
    outputs = open_stack("t1", None).names.outputs_bucket
    stored = s3.list_objects_v2(Bucket=outputs, Prefix="batches/")["KeyCount"]
    assert stored == 6  # three batch records (files, s3 source, the CLI's), one part each
