"""The whole elastic stack on simulated instances, end to end (issue 11, item 3).

``aws up --with-web``; the web instance boots in a container and runs the web tier and its
autoscaler under systemd; 100 photos posted at once to its port are all answered with the bare
model's labels by worker instances its autoscaler launched (booted by the harness from their
own user data); after the load the workers are terminated and their containers gone; ``aws
down`` leaves nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import DevPhoto
from tests.helpers.aws_adapters import Endpoint

from imgrec.aws.naming import ROLE_WEB, ROLE_WORKER
from imgrec.aws.provision import open_stack
from imgrec.model.classifier import Classification, load_classifier

from .conftest import TIMINGS
from .harness import InstanceHarness
from .scenario import leftovers, post_all, provision_with_web, wait_for_web, wait_workers_gone
from .stack import ReadinessWatch, consoles

pytestmark = [pytest.mark.instances, pytest.mark.aws]


def test_elastic_stack_boots_scales_out_answers_and_scales_in(
    moto: Endpoint, instance_rootfs: Path, tmp_path: Path, dev_photos: list[DevPhoto]
) -> None:
    classifier = load_classifier("mobilenet_v2", threads=1)
    expected = {}
    for photo, outcome in zip(dev_photos, classifier.classify_images(
            [p.path.read_bytes() for p in dev_photos]), strict=True):
        assert isinstance(outcome, Classification)
        expected[photo.path.name] = outcome.top5[0].class_index
    assert len(expected) == 100

    with InstanceHarness(moto.url, tmp_path / "instances", instance_rootfs,
                         stack="t1") as harness:
        stack, url = provision_with_web("t1")
        web = wait_for_web(harness, url, timeout_s=240)
        TIMINGS.append((f"web {web.instance_id}: launch to serving",
                        web.ready_at - web.launched_at))

        with ReadinessWatch(harness, stack.names) as watch:
            run = post_all(url, [p.path for p in dev_photos], timeout_s=420)
            TIMINGS.append(("100 photos posted at once: wall time to the last answer",
                            run.wall_s))
            workers = [i for i in harness.instances() if i.role == ROLE_WORKER]
            assert not run.failures, f"{run.failures}\n{consoles(harness, workers)}"
            assert run.labels == expected
            assert workers, "the autoscaler launched no worker"
            assert set(watch.ready) == {w.instance_id for w in workers}, \
                consoles(harness, workers)
            for ready in sorted(watch.ready.values(), key=lambda r: r.launched_at):
                TIMINGS.append((f"worker {ready.instance_id}: launch to ready",
                                ready.ready_at - ready.launched_at))
            scale_in_s = wait_workers_gone(harness, since=run.finished_at, timeout_s=300)
            TIMINGS.append((f"scale-in of {len(workers)} workers: last answer to every worker "
                            "container gone", scale_in_s))
        assert sum(watch.processed.values()) >= len(expected)  # the instances did the work

        open_stack("t1", None).down()
        assert leftovers(moto) == {}
        gone = harness.wait_until_gone(web.instance_id, timeout_s=120)
        assert gone.end_reason == "instance terminated in EC2"
        assert all(i.gone for i in harness.instances())
        assert [i.role for i in harness.instances()].count(ROLE_WEB) == 1
