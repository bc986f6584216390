"""A worker instance boots from the stack's own user data and answers requests (issue 11, item 2).

``aws up`` builds the real wheel and wheelhouse and renders the real user data; a web tier on
this machine (``imgrec serve --backend aws``) keeps one worker with its autoscaler, whose
RunInstances call the harness boots: cloud-init downloads the wheelhouse with the instance
profile's credentials, installs offline, and systemd starts ``imgrec-worker.service``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.conftest import DevPhoto
from tests.helpers.aws_adapters import Endpoint
from tests.helpers.server import classify_each, run_server

from imgrec.aws.provision import UpOptions, open_stack
from imgrec.deploy import BOOT_STARTED
from imgrec.model.classifier import Classification, load_classifier

from .conftest import TIMINGS
from .harness import InstanceHarness
from .stack import wait_for_ready_workers

pytestmark = [pytest.mark.instances, pytest.mark.aws]
PHOTOS = 10


def test_a_worker_instance_installs_offline_and_answers_requests(
    moto: Endpoint, instance_rootfs: Path, tmp_path: Path, dev_photos: list[DevPhoto]
) -> None:
    started = time.time()
    stack = open_stack("t1", None)
    stack.up(UpOptions())
    TIMINGS.append(("aws up with the real wheel and wheelhouse", time.time() - started))
    photos = dev_photos[:PHOTOS]
    classifier = load_classifier("mobilenet_v2", threads=1)
    expected = []
    for outcome in classifier.classify_images([p.path.read_bytes() for p in photos]):
        assert isinstance(outcome, Classification)
        expected.append(outcome.top5[0].class_index)

    with InstanceHarness(moto.url, tmp_path / "instances", instance_rootfs,
                         stack="t1") as harness:
        with run_server(tmp_path / "state", "--backend", "aws", "--stack", "t1",
                        "--min-workers", "1", "--max-workers", "1") as server:
            [worker] = wait_for_ready_workers(harness, stack.names, count=1, timeout_s=240)
            TIMINGS.append((f"worker {worker.instance_id}: launch to ready",
                            worker.ready_at - worker.launched_at))
            TIMINGS.append((f"worker {worker.instance_id}: container start to ready",
                            worker.ready_at - worker.booted_at))
            console = harness.console(worker.instance_id) or ""
            assert f"{BOOT_STARTED} imgrec-worker.service" in console

            assert classify_each(server.url, [p.path for p in photos]) == expected
        # Stopping, the web tier terminated the worker it launched; the harness powered it off.
        gone = harness.wait_until_gone(worker.instance_id, timeout_s=120)
        assert gone.end_reason == "instance terminated in EC2", gone.end_reason
        assert not gone.container.root.exists()
