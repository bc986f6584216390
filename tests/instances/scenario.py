"""The steps of the elastic-stack run, shared by its test and ``make demo-aws-local``."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.helpers.aws_adapters import Endpoint
from tests.helpers.server import free_port

from imgrec.aws.naming import ROLE_WEB, ROLE_WORKER
from imgrec.aws.provision import Stack, UpOptions, open_stack

from .harness import InstanceHarness
from .stack import consoles


@dataclass(frozen=True)
class ReadyInstance:
    instance_id: str
    launched_at: float
    booted_at: float
    ready_at: float


@dataclass(frozen=True)
class LoadRun:
    """What 100 photos posted at once got back: top-1 class index by file name."""

    labels: dict[str, int]
    failures: dict[str, str]
    started_at: float
    finished_at: float

    @property
    def wall_s(self) -> float:
        return self.finished_at - self.started_at


# Every simulated instance shares this machine's cores, so the stack's cap is 4 rather than
# AWS's 20, and idle workers go after 10 s instead of the 120 s that suits real EC2 billing.
ONE_MACHINE = (("max_workers", "4"), ("idle_before_drain_s", "10"))


def provision_with_web(name: str, **options: Any) -> tuple[Stack, str]:
    """``aws up --with-web`` on a free port of this machine; the stack and the web tier's URL."""
    options.setdefault("web_settings", ONE_MACHINE)
    port = free_port()
    stack = open_stack(name, None)
    stack.up(UpOptions(with_web=True, allow_cidr="127.0.0.1/32", port=port, **options))
    return stack, f"http://127.0.0.1:{port}"


def wait_for_web(harness: InstanceHarness, url: str, timeout_s: float) -> ReadyInstance:
    """The web instance once its web tier answers ``/healthz`` (it shares this host's network)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        webs = [i for i in harness.instances() if i.role == ROLE_WEB and not i.gone]
        if webs:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    web = webs[0]
                    return ReadyInstance(web.instance_id, web.launched_at, web.booted_at,
                                         time.time())
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    webs = [i for i in harness.instances() if i.role == ROLE_WEB]
    raise TimeoutError(f"no web tier at {url} after {timeout_s:.0f} s\n{consoles(harness, webs)}")


def post_all(url: str, photos: list[Path], timeout_s: float) -> LoadRun:
    """Post every photo at once as a job, then collect every answer."""
    started = time.time()
    with httpx.Client(timeout=60) as client:
        def submit(photo: Path) -> tuple[str, str]:
            resp = client.post(f"{url}/api/v1/jobs",
                               files={"file": (photo.name, photo.read_bytes())})
            resp.raise_for_status()
            return photo.name, str(resp.json()["poll"])

        with ThreadPoolExecutor(max_workers=len(photos)) as pool:
            pending = dict(pool.map(submit, photos))
        labels: dict[str, int] = {}
        failures: dict[str, str] = {}
        finished = started
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for name, poll in list(pending.items()):
                job = client.get(f"{url}{poll}").json()
                if job["status"] == "done":
                    labels[name] = int(job["result"]["class_index"])
                elif job["status"] == "failed":
                    failures[name] = f"{job.get('error')}: {job.get('detail')}"
                else:
                    continue
                finished = time.time()
                del pending[name]
            time.sleep(0.2)
    failures.update({name: "no answer in time" for name in pending})
    return LoadRun(labels, failures, started, finished)


def wait_workers_gone(harness: InstanceHarness, since: float, timeout_s: float) -> float:
    """Seconds from ``since`` until every worker container is powered off and removed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        workers = [i for i in harness.instances() if i.role == ROLE_WORKER]
        if workers and all(i.gone for i in workers):
            return max(i.ended_at or 0.0 for i in workers) - since
        time.sleep(0.5)
    raise TimeoutError(f"worker containers still running {timeout_s:.0f} s after the load")


def leftovers(moto: Endpoint) -> dict[str, list[str]]:
    """Whatever of any stack is still in moto (default security groups and VPCs aside)."""
    ec2, iam = moto.client("ec2"), moto.client("iam")
    found = {
        "buckets": [b["Name"] for b in moto.client("s3").list_buckets().get("Buckets", [])],
        "queues": moto.client("sqs").list_queues().get("QueueUrls", []),
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"]],
        "instance profiles": [p["InstanceProfileName"]
                              for p in iam.list_instance_profiles()["InstanceProfiles"]],
        "security groups": [g["GroupName"] for g in ec2.describe_security_groups()[
            "SecurityGroups"] if g["GroupName"] != "default"],
        "launch templates": [t["LaunchTemplateName"]
                             for t in ec2.describe_launch_templates()["LaunchTemplates"]],
        "instances": [i["InstanceId"] for r in ec2.describe_instances()["Reservations"]
                      for i in r["Instances"] if i["State"]["Name"] != "terminated"],
    }
    return {kind: names for kind, names in found.items() if names}
