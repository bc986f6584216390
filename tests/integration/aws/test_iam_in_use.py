"""Every call each tier makes is allowed by its own rendered policy (issue 12, item 9).

The web tier (with its autoscaler) and a worker run against moto through fault proxies of
their own, so every call is recorded per tier; each call's (action, resource) must fall inside
a statement of that tier's policy as ``aws up`` rendered it into IAM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests.conftest import DevPhoto
from tests.helpers.aws_adapters import Endpoint
from tests.helpers.aws_faults import FaultProxy
from tests.helpers.iam_check import Account, refused
from tests.helpers.server import run_server
from tests.helpers.webhook_receiver import webhook_receiver

from imgrec import keys
from imgrec.aws.naming import ROLE_WEB, ROLE_WORKER
from imgrec.aws.provision import UpOptions, open_stack
from imgrec.messages import ClassifyRequest

pytestmark = pytest.mark.aws


@contextmanager
def worker(endpoint: str, log_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    with open(log_dir / "worker.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "imgrec", "worker", "--backend", "aws",
                                 "--stack", "t1", "--worker-id", "local-0", "--threads", "1"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _dead_letter_and_replay(url: str, moto: Endpoint, image: bytes) -> None:
    """A request that died (put on the dead-letter queue directly: redrive itself is tested
    elsewhere): the web tier records it (dead-letters/), lists it and replays it."""
    names = open_stack("t1", None).names
    request_id = keys.new_request_id()
    request = ClassifyRequest(request_id, keys.input_key(request_id), None, time.time())
    moto.client("s3").put_object(Bucket=names.inputs_bucket, Key=request.key, Body=image)
    sqs = moto.client("sqs")
    dlq = sqs.get_queue_url(QueueName=names.dead_letter_queue)["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody=request.encode())
    deadline = time.monotonic() + 60
    while not any(d["request_id"] == request_id for d in
                  httpx.get(f"{url}/api/v1/dead-letters", timeout=30).json()["dead_letters"]):
        assert time.monotonic() < deadline, "the dead letter was not recorded"
        time.sleep(0.2)
    replayed = httpx.post(f"{url}/api/v1/dead-letters/{request_id}/replay", timeout=30)
    assert replayed.status_code == 202, replayed.text
    while httpx.get(f"{url}/api/v1/jobs/{request_id}").json()["status"] != "done":
        assert time.monotonic() < deadline, "the replayed request was not classified"
        time.sleep(0.2)
    assert httpx.delete(f"{url}/api/v1/dead-letters/{request_id}", timeout=30).status_code == 200


def test_each_tier_calls_only_what_its_policy_allows(
    moto: Endpoint, wheel: Path, tmp_path: Path, dev_photos: list[DevPhoto]
) -> None:
    stack = open_stack("t1", None)
    stack.up(UpOptions(wheel=wheel, with_web=True, allow_cidr="203.0.113.7/32"))
    n = stack.names
    iam, ec2 = moto.client("iam"), moto.client("ec2")
    policies = {role: json.loads(json.dumps(iam.get_role_policy(
        RoleName=n.role(role), PolicyName=n.policy(role))["PolicyDocument"]))
        for role in (ROLE_WEB, ROLE_WORKER)}
    [version] = ec2.describe_launch_template_versions(
        LaunchTemplateName=n.launch_template(ROLE_WORKER),
        Versions=["$Latest"])["LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]
    where = Account(n.account, n.region, {n.launch_template(ROLE_WORKER): {
        "id": version["LaunchTemplateId"], "image": data["ImageId"],
        "groups": data.get("SecurityGroupIds", []), "role_arn": n.role_arn(ROLE_WORKER)}})

    with (FaultProxy(moto.url) as web_calls, FaultProxy(moto.url) as worker_calls,
          webhook_receiver() as receiver):
        web_env = {"AWS_ENDPOINT_URL": web_calls.url, "IMGREC_WEBHOOK_SECRET": "s",
                   "IMGREC_WEBHOOK_ALLOW_PRIVATE": "true"}
        with (
            run_server(tmp_path / "state", "--backend", "aws", "--stack", "t1",
                       "--max-workers", "1", env=web_env) as server,
            worker(worker_calls.url, tmp_path),
        ):
            for photo in dev_photos[:3]:
                resp = httpx.post(f"{server.url}/api/v1/classify", timeout=90,
                                  files={"file": (photo.path.name, photo.path.read_bytes())})
                assert resp.status_code == 200, resp.text
            job = httpx.post(f"{server.url}/api/v1/jobs", timeout=30,
                             params={"callback_url": receiver.url},
                             files={"file": ("x.jpg", dev_photos[3].path.read_bytes())}).json()
            assert receiver.arrived.wait(60), "no webhook"  # callbacks/ written and read
            deadline = time.monotonic() + 30
            while httpx.get(f"{server.url}{job['poll']}").json()["callback"]["state"] != \
                    "delivered":
                assert time.monotonic() < deadline
                time.sleep(0.2)
            keyed = [httpx.post(f"{server.url}/api/v1/jobs", timeout=30,
                                headers={"Idempotency-Key": "iam-check"},
                                files={"file": ("x.jpg", dev_photos[4].path.read_bytes())})
                     for _ in range(2)]
            assert [r.status_code for r in keyed] == [202, 202]
            cancel = httpx.delete(f"{server.url}{keyed[0].json()['poll']}", timeout=30)
            assert cancel.status_code in (200, 409), cancel.text  # unless already answered
            _dead_letter_and_replay(server.url, moto, dev_photos[4].path.read_bytes())
            # A batch: its record and parts, the bulk lane, progress and results.
            batch = httpx.post(f"{server.url}/api/v1/batches", timeout=60, files=[
                ("file", (p.path.name, p.path.read_bytes())) for p in dev_photos[4:6]]).json()
            deadline = time.monotonic() + 60
            while httpx.get(f"{server.url}{batch['poll']}").json()["status"] != "done":
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert httpx.get(f"{server.url}{batch['results']}").status_code == 200
            assert httpx.get(f"{server.url}/api/v1/status").status_code == 200
            time.sleep(1.5)  # a few autoscaler ticks: depth, fleet, heartbeats, estimates
        assert web_calls.count("ec2", "RunInstances") >= 1  # the autoscaler launched
        assert web_calls.count("ec2", "TerminateInstances") >= 1  # and closed its fleet
        assert worker_calls.count("sqs", "ReceiveMessage") >= 1
        web_refused = refused(web_calls.calls, policies[ROLE_WEB], where)
        assert not web_refused, "\n".join(web_refused)
        assert refused(worker_calls.calls, policies[ROLE_WORKER], where) == []
