"""``make demo-aws-local``: the elastic AWS stack on this machine, without an AWS account.

moto plays AWS's APIs (S3, SQS, EC2, IAM, STS, SSM) and every EC2 instance boots for real as a
systemd-nspawn container (``tests/instances``) from its own user data. The run: ``aws up
--with-web``; the web instance boots and serves; 100 photos are posted at once to its port;
its autoscaler launches worker instances that answer them; after the load they are drained and
their containers removed; ``aws down``. It prints boot-to-ready per instance, the wall time of
each round and the scale-in time. Needs root (systemd-nspawn, overlay mounts).

    python -m tests.instances.demo [--rounds N] [--photos DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers import aws_adapters
from tests.helpers.aws_adapters import Endpoint
from tests.helpers.paths import DEV_IMAGES

from imgrec.aws.naming import ROLE_WORKER, StackNames

from . import rootfs
from .harness import InstanceHarness
from .scenario import leftovers, post_all, provision_with_web, wait_for_web, wait_workers_gone
from .stack import ReadinessWatch, consoles

STACK = "demo"


def _say(text: str) -> None:
    print(text, flush=True)


def _expected(photos: list[Path]) -> dict[str, int]:
    from imgrec.model.classifier import Classification, load_classifier

    classifier = load_classifier("mobilenet_v2", threads=1)
    out = {}
    for path, outcome in zip(photos, classifier.classify_images(
            [p.read_bytes() for p in photos]), strict=True):
        assert isinstance(outcome, Classification)
        out[path.name] = outcome.top5[0].class_index
    return out


def _round(harness: InstanceHarness, url: str, photos: list[Path], expected: dict[str, int],
           number: int, names: StackNames) -> bool:
    before = {i.instance_id for i in harness.instances() if i.role == ROLE_WORKER}
    with ReadinessWatch(harness, names) as watch:
        _say(f"round {number}: posting {len(photos)} photos at once to {url}")
        run = post_all(url, photos, timeout_s=600)
        right = sum(run.labels.get(name) == label for name, label in expected.items())
        _say(f"round {number}: {len(run.labels)} answered, {right} with the bare model's label, "
             f"{len(run.failures)} failed; wall time {run.wall_s:.1f} s")
        # Watched until the workers are gone: their last heartbeats carry their final counts.
        scale_in = wait_workers_gone(harness, since=run.finished_at, timeout_s=600)
    for ready in sorted(watch.ready.values(), key=lambda r: r.launched_at):
        if ready.instance_id not in before:
            _say(f"  worker {ready.instance_id}: launch to ready "
                 f"{ready.ready_at - ready.launched_at:.1f} s "
                 f"(container start to ready {ready.ready_at - ready.booted_at:.1f} s), "
                 f"{watch.processed.get(ready.instance_id, 0)} requests")
    _say(f"round {number}: scale-in, last answer to every worker container gone: "
         f"{scale_in:.1f} s")
    if run.failures or right != len(expected):
        workers = [i for i in harness.instances() if i.role == ROLE_WORKER]
        _say(f"FAILED: {run.failures}\n{consoles(harness, workers)}")
        return False
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="load rounds (scale out and in)")
    parser.add_argument("--photos", type=Path, default=DEV_IMAGES, help="directory of photos")
    parser.add_argument("--keep", type=Path, help="keep consoles and logs in this directory")
    args = parser.parse_args(argv)
    reason = rootfs.cannot_boot_reason()
    if reason:
        _say(f"cannot boot simulated instances here: {reason}")
        return 2
    photos = sorted(p for p in args.photos.glob("*") if p.suffix.lower() in (".jpg", ".jpeg",
                                                                             ".png"))[:100]
    if not photos:
        _say(f"no photos in {args.photos}")
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("tests.instances.harness").setLevel(logging.INFO)
    started = time.time()
    _say("root filesystem of the instances (built once, about a minute)...")
    base = rootfs.unpacked(rootfs.build_tarball())
    work = Path(args.keep or tempfile.mkdtemp(prefix="imgrec-demo-"))
    work.mkdir(parents=True, exist_ok=True)

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = Endpoint(f"http://{host}:{port}")
    aws_adapters.seed_public_parameters()
    os.environ.update(aws_adapters.moto_env(moto, work))
    ok = True
    try:
        expected = _expected(photos)
        with InstanceHarness(moto.url, work / "instances", base, stack=STACK) as harness:
            os.environ["AWS_ENDPOINT_URL_EC2"] = harness.ec2_url  # consoles for aws status
            _say(f"aws up --stack {STACK} --with-web (moto at {moto.url})")
            stack, url = provision_with_web(STACK)
            web = wait_for_web(harness, url, timeout_s=300)
            _say(f"web {web.instance_id}: launch to serving {web.ready_at - web.launched_at:.1f} s"
                 f" (container start to serving {web.ready_at - web.booted_at:.1f} s)")
            for number in range(1, args.rounds + 1):
                ok = _round(harness, url, photos, expected, number, stack.names) and ok
            _say(f"aws down --stack {STACK}")
            stack.down()
            left = leftovers(moto)
            harness.wait_until_gone(web.instance_id, timeout_s=180)
            _say(f"left behind: {left or 'nothing'}; containers running: "
                 f"{sum(not i.gone for i in harness.instances())}")
            ok = ok and not left
    finally:
        server.stop()
    _say(f"{'done' if ok else 'FAILED'} in {time.time() - started:.0f} s; consoles in {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
