"""Idempotency keys, deadlines and cancel on moto: two web tiers share one stack (issue 16).

Keys live in S3, so two web tiers given the same key at the same moment make one job; a job
past its deadline or cancelled is never classified by the (later started) worker.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import DevPhoto
from tests.helpers.aws_adapters import Endpoint
from tests.helpers.server import run_server

from imgrec.aws.provision import UpOptions, open_stack

from .test_end_to_end import local_workers

pytestmark = pytest.mark.aws


def _settled(url: str, job_id: str, timeout_s: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (job := httpx.get(f"{url}/api/v1/jobs/{job_id}", timeout=10).json())["status"] \
            == "queued":
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    return job  # type: ignore[no-any-return]


def test_two_web_tiers_agree_on_keys_and_workers_skip_expired_and_cancelled_jobs(
    moto: Endpoint, wheel: Path, tmp_path: Path, dev_photos: list[DevPhoto]
) -> None:
    open_stack("t1", None).up(UpOptions(wheel=wheel))
    photo = (dev_photos[0].path.name, dev_photos[0].path.read_bytes())
    other = (dev_photos[1].path.name, dev_photos[1].path.read_bytes())
    args = ("--backend", "aws", "--stack", "t1", "--workers", "0")

    def post(url: str, route: str, image: tuple[str, bytes], **headers: str) -> httpx.Response:
        return httpx.post(f"{url}{route}", files={"file": image}, timeout=90, headers=headers)

    with (run_server(tmp_path / "a", *args) as a, run_server(tmp_path / "b", *args) as b):
        with ThreadPoolExecutor(2) as pool:
            both = list(pool.map(lambda url: post(url, "/api/v1/jobs", photo,
                                                  **{"Idempotency-Key": "moto-job"}),
                                 (a.url, b.url)))
        assert [r.status_code for r in both] == [202, 202], [r.text for r in both]
        job_id = both[0].json()["id"]
        assert both[1].json()["id"] == job_id
        reused = post(b.url, "/api/v1/jobs", other, **{"Idempotency-Key": "moto-job"})
        assert reused.status_code == 409 and reused.json()["error"] == "idempotency_key_reused"

        late = post(a.url, "/api/v1/jobs", photo, **{"X-Deadline-S": "0.5"}).json()["id"]
        doomed = post(b.url, "/api/v1/jobs", photo).json()["id"]
        cancel = httpx.delete(f"{a.url}/api/v1/jobs/{doomed}", timeout=30)
        assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled", cancel.text
        time.sleep(0.6)

        with local_workers(1, tmp_path):
            states = {i: _settled(b.url, i) for i in (job_id, late, doomed)}
            with ThreadPoolExecutor(2) as pool:
                sync = list(pool.map(lambda url: post(url, "/api/v1/classify", other,
                                                      **{"Idempotency-Key": "moto-sync"}),
                                     (a.url, b.url)))
        finished = httpx.delete(f"{a.url}/api/v1/jobs/{job_id}", timeout=30)

    assert states[job_id]["status"] == "done"
    assert states[job_id]["result"]["class_index"] == dev_photos[0].class_index
    assert states[late]["status"] == "deadline_exceeded"
    assert states[doomed]["status"] == "cancelled"
    assert [r.status_code for r in sync] == [200, 200], [r.text for r in sync]
    assert sync[0].json()["id"] == sync[1].json()["id"]
    assert sync[0].json()["label"] == sync[1].json()["label"]
    assert finished.status_code == 409 and finished.json()["job_status"] == "done"
    outputs = open_stack("t1", None).names.outputs_bucket
    s3 = moto.client("s3")
    results = s3.list_objects_v2(Bucket=outputs, Prefix="results/")["KeyCount"]
    records = s3.list_objects_v2(Bucket=outputs, Prefix="idempotency/")["KeyCount"]
    assert results == 4  # the keyed job, the late one, the cancelled one, one sync answer
    assert records == 2
