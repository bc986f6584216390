"""A boot that fails says why, in the instance's console and in ``imgrec aws status``."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from tests.helpers.aws_adapters import Endpoint
from typer.testing import CliRunner

from imgrec.aws import wheelhouse
from imgrec.aws.images import platform
from imgrec.aws.naming import ROLE_WORKER
from imgrec.aws.provision import UpOptions, open_stack
from imgrec.cli import app
from imgrec.deploy import BOOT_FAILED

from .harness import InstanceHarness

pytestmark = [pytest.mark.instances, pytest.mark.aws]


def _wheelhouse_without(tmp_path: Path, missing: str) -> Path:
    """This checkout's wheelhouse, less one dependency's wheel."""
    built = wheelhouse.build(wheelhouse.build_wheel(tmp_path), platform("c7i.large"))
    out = tmp_path / "wheelhouse"
    with tarfile.open(built.path) as tar:
        tar.extractall(out, members=[m for m in tar.getmembers()
                                     if not m.name.startswith(f"{missing}-")], filter="data")
    return out


def test_a_wheel_missing_from_the_wheelhouse_is_reported_in_console_and_status(
    moto: Endpoint, harness: InstanceHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", harness.ec2_url)  # consoles, as EC2 keeps them
    stack = open_stack("t1", None)
    stack.up(UpOptions(wheelhouse=_wheelhouse_without(tmp_path, "numpy")))
    ec2 = moto.client("ec2")
    [instance] = ec2.run_instances(
        LaunchTemplate={"LaunchTemplateName": stack.names.launch_template(ROLE_WORKER)},
        MinCount=1, MaxCount=1)["Instances"]
    box = harness.wait_for_boot(instance["InstanceId"]).container
    assert box.wait_for_cloud_init(timeout_s=120) == "error"

    console = harness.console(instance["InstanceId"]) or ""
    [line] = [x for x in console.splitlines() if BOOT_FAILED in x]
    assert "install imgrec-0.1.0-py3-none-any.whl offline" in line
    assert "numpy" in line  # pip's own reason: no matching distribution
    assert box.unit_state("imgrec-worker.service") != "active"

    shown = CliRunner().invoke(app, ["aws", "status", "--stack", "t1"])
    assert shown.exit_code == 0, shown.output
    [row] = [x for x in shown.output.splitlines() if instance["InstanceId"] in x]
    assert f"{BOOT_FAILED} install imgrec-0.1.0-py3-none-any.whl offline" in row
    assert "numpy" in row


def test_a_worker_that_never_gets_ready_is_replaced_after_the_boot_deadline(
    moto: Endpoint, harness: InstanceHarness, tmp_path: Path
) -> None:
    import time

    import httpx
    from tests.helpers.server import run_server

    stack = open_stack("t1", None)
    stack.up(UpOptions(wheelhouse=_wheelhouse_without(tmp_path, "numpy")))
    ec2 = moto.client("ec2")

    def workers() -> dict[str, str]:
        pages = ec2.get_paginator("describe_instances").paginate(Filters=[
            {"Name": "tag:imgrec:role", "Values": ["worker"]}])
        return {i["InstanceId"]: i["State"]["Name"]
                for page in pages for r in page["Reservations"] for i in r["Instances"]}

    with run_server(tmp_path / "state", "--backend", "aws", "--stack", "t1",
                    "--min-workers", "1", "--max-workers", "1",
                    "--boot-deadline-s", "30") as server:
        deadline = time.monotonic() + 240
        problems: list[str] = []
        while time.monotonic() < deadline:
            status = httpx.get(f"{server.url}/api/v1/status", timeout=10).json()
            problems = status["scaling"]["problems"]
            states = workers()
            gone = [i for i, s in states.items() if s in ("shutting-down", "terminated")]
            if gone and len(states) >= 2 and any("not ready" in p for p in problems):
                break
            time.sleep(2)
        else:
            raise AssertionError(f"no replacement after the boot deadline: {workers()} "
                                 f"{problems}\n{server.log()[-3000:]}")
    [first, *_] = sorted(gone)
    assert any(first in p and "boot deadline 30 s" in p for p in problems)
