"""Faults of instances (issue 11, item 4): a worker lost mid-batch costs no request.

The web tier (on this machine) keeps exactly one worker instance, so the requests in flight
when it is killed are that worker's. Its container is SIGKILLed and the instance terminated,
as when EC2 loses a host: the autoscaler launches a replacement from the same user data, and
the killed worker's requests come back after the visibility timeout and are answered by it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from tests.conftest import DevPhoto
from tests.helpers.aws_adapters import Endpoint
from tests.helpers.server import run_server

from imgrec.aws.naming import ROLE_WORKER
from imgrec.aws.provision import UpOptions, open_stack
from imgrec.aws.session import AwsSession
from imgrec.model.classifier import Classification, load_classifier

from .conftest import TIMINGS
from .harness import InstanceHarness
from .scenario import LoadRun, post_all
from .stack import ReadinessWatch, consoles, wait_for_ready_workers

pytestmark = [pytest.mark.instances, pytest.mark.aws]
PHOTOS = 60


def test_a_worker_killed_mid_batch_costs_no_request(
    moto: Endpoint, instance_rootfs: Path, tmp_path: Path, dev_photos: list[DevPhoto]
) -> None:
    photos = dev_photos[:PHOTOS]
    classifier = load_classifier("mobilenet_v2", threads=1)
    expected = {}
    for photo, outcome in zip(photos, classifier.classify_images(
            [p.path.read_bytes() for p in photos]), strict=True):
        assert isinstance(outcome, Classification)
        expected[photo.path.name] = outcome.top5[0].class_index
    stack = open_stack("t1", None)
    stack.up(UpOptions(visibility_timeout_s=20))
    sqs = AwsSession(stack.names.region).client("sqs")
    queue_url = sqs.get_queue_url(QueueName=stack.names.request_queue)["QueueUrl"]

    def in_flight() -> int:
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
            "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessagesNotVisible"])

    with (
        InstanceHarness(moto.url, tmp_path / "instances", instance_rootfs, stack="t1")
        as harness,
        run_server(tmp_path / "state", "--backend", "aws", "--stack", "t1",
                   "--min-workers", "1", "--max-workers", "1") as server,
        ReadinessWatch(harness, stack.names) as watch,
    ):
        [victim] = wait_for_ready_workers(harness, stack.names, count=1, timeout_s=240)
        runs: list[LoadRun] = []
        load = threading.Thread(target=lambda: runs.append(
            post_all(server.url, [p.path for p in photos], timeout_s=300)))
        load.start()
        held = 0
        deadline = time.monotonic() + 60
        while held == 0 and time.monotonic() < deadline:
            held = in_flight()
        assert held > 0, "the worker never took a request"
        killed_at = time.time()
        harness.kill(victim.instance_id)
        load.join()
        [run] = runs
        workers = [i for i in harness.instances() if i.role == ROLE_WORKER]
        assert not run.failures, f"{run.failures}\n{consoles(harness, workers)}"
        assert run.labels == expected
        replacements = [w for w in workers if w.instance_id != victim.instance_id]
        assert len(replacements) == 1, [w.instance_id for w in workers]
        took_over = time.monotonic() + 30  # heartbeats tell the count every few seconds
        while watch.processed.get(replacements[0].instance_id, 0) < held:
            assert time.monotonic() < took_over, watch.processed
            time.sleep(0.5)
    TIMINGS.append((f"worker killed holding {held} requests: kill to last answer",
                    run.finished_at - killed_at))
