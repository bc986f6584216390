"""The AWS fault tests' pieces: a stack on moto, local workers against it, what moto holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from tests.helpers.aws_adapters import REGION, Endpoint
from tests.helpers.wheels import stand_in_wheel

from imgrec import keys
from imgrec.aws.naming import StackNames
from imgrec.aws.provision import UpOptions, open_stack


def provision(stack: str, tmp_path: Path, *, visibility_s: float) -> StackNames:
    """``aws up`` on moto (the environment must point boto3 at moto); the stack's names."""
    wheel = stand_in_wheel(tmp_path)  # no instance ever runs it
    opened = open_stack(stack, None)
    opened.up(UpOptions(wheel=wheel, visibility_timeout_s=visibility_s))
    return opened.names


@contextmanager
def local_workers(stack: str, count: int, log_dir: Path, env: dict[str, str]
                  ) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """``imgrec worker --backend aws`` processes by worker id; SIGTERM (then SIGKILL) at the end."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for i in range(count):
        worker_id = f"local-{i}"
        with open(log_dir / f"{worker_id}.log", "wb") as log:
            procs[worker_id] = subprocess.Popen(
                [sys.executable, "-m", "imgrec", "worker", "--backend", "aws", "--stack", stack,
                 "--worker-id", worker_id, "--threads", "1"],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
    try:
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def heartbeats(moto: Endpoint, names: StackNames) -> dict[str, dict[str, Any]]:
    """Each worker's last heartbeat in the stack's outputs bucket, read straight from moto."""
    s3 = moto.client("s3")
    listed = s3.list_objects_v2(Bucket=names.outputs_bucket, Prefix=keys.HEARTBEATS_PREFIX)
    beats = {}
    for obj in listed.get("Contents", []):
        record = json.loads(s3.get_object(Bucket=names.outputs_bucket, Key=obj["Key"])["Body"]
                            .read())
        beats[str(record["worker_id"])] = record
    return beats


def wait_for_workers(moto: Endpoint, names: StackNames, procs: dict[str, subprocess.Popen[bytes]],
                     timeout_s: float = 90.0) -> None:
    """Wait until every worker in ``procs`` has reported ready (or busy)."""
    deadline = time.monotonic() + timeout_s
    while True:
        for worker_id, proc in procs.items():
            assert proc.poll() is None, f"worker {worker_id} exited with {proc.returncode}"
        beats = heartbeats(moto, names)
        if all(beats.get(w, {}).get("state") in ("ready", "busy") for w in procs):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"workers not ready after {timeout_s} s: {beats}")
        time.sleep(0.2)


def request_queue_depth(moto: Endpoint, names: StackNames) -> tuple[int, int]:
    """(visible, in flight) on the stack's request queue, read straight from moto."""
    sqs = moto.client("sqs")
    url = sqs.get_queue_url(QueueName=names.request_queue)["QueueUrl"]
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(
        attrs["ApproximateNumberOfMessagesNotVisible"])


def most_receives(names: StackNames) -> int:
    """The highest receive count of any message on the request queue right now.

    Read from moto's in-process state: SQS's API cannot show a message without receiving it
    (which would steal it from the workers). Needs moto's server in this process.
    """
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[names.account][REGION].queues.get(names.request_queue)
    if queue is None:
        return 0
    return max((m.approximate_receive_count for m in list(queue._messages)), default=0)


def post_photo(url: str, photo: Path, route: str = "/api/v1/classify",
               timeout_s: float = 90.0) -> httpx.Response:
    return httpx.post(f"{url}{route}", files={"file": (photo.name, photo.read_bytes())},
                      timeout=timeout_s)
