"""The EC2 fleet on moto: launch from the template, tags, states from heartbeats, drain, cap."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.helpers.aws_adapters import Endpoint

from imgrec.aws.ec2_fleet import Ec2Fleet
from imgrec.aws.provision import UpOptions, open_stack
from imgrec.backend import open_backend
from imgrec.config import load_settings
from imgrec.ports import WorkerState
from imgrec.worker.heartbeat import Heartbeat

pytestmark = pytest.mark.aws


@pytest.fixture
def fleet(moto: Endpoint, wheel: Path) -> Ec2Fleet:
    open_stack("t1", None).up(UpOptions(wheel=wheel))
    settings = load_settings(backend="aws", stack="t1")
    fleet = open_backend(settings).open_fleet(3)
    assert isinstance(fleet, Ec2Fleet)
    return fleet


def _tags(moto: Endpoint, instance_id: str) -> dict[str, str]:
    [res] = moto.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return {t["Key"]: t["Value"] for t in res["Instances"][0].get("Tags", [])}


def test_launch_uses_the_template_and_tags_every_instance(moto: Endpoint, fleet: Ec2Fleet) -> None:
    ids = fleet.launch(2)
    assert len(ids) == 2
    ec2 = moto.client("ec2")
    [template] = ec2.describe_launch_templates(LaunchTemplateNames=["t1-worker"])[
        "LaunchTemplates"]
    for instance_id in ids:
        assert _tags(moto, instance_id)["imgrec:stack"] == "t1"
        assert _tags(moto, instance_id)["imgrec:role"] == "worker"
        assert _tags(moto, instance_id)["aws:ec2launchtemplate:id"] == template[
            "LaunchTemplateId"]
    assert {w.worker_id for w in fleet.list()} == set(ids)
    assert {w.state for w in fleet.list()} == {WorkerState.STARTING}


def test_never_exceeds_the_cap_counting_every_launcher(fleet: Ec2Fleet) -> None:
    assert len(fleet.launch(2)) == 2
    other = Ec2Fleet(fleet.ec2, fleet.names, fleet.store, max_workers=3)  # a second web tier
    assert len(other.launch(5)) == 1
    assert fleet.launch(1) == []
    assert len(fleet.list()) == 3


def test_state_comes_from_the_workers_heartbeat(fleet: Ec2Fleet) -> None:
    ready, busy, booting = fleet.launch(3)
    Heartbeat(fleet.store, ready).beat(WorkerState.READY)
    Heartbeat(fleet.store, busy).beat(WorkerState.BUSY)
    states = {w.worker_id: w.state for w in fleet.list()}
    assert states == {ready: WorkerState.READY, busy: WorkerState.BUSY,
                      booting: WorkerState.STARTING}


def test_drain_terminates_only_idle_workers(moto: Endpoint, fleet: Ec2Fleet) -> None:
    ready, busy, booting = fleet.launch(3)
    Heartbeat(fleet.store, ready).beat(WorkerState.READY)
    Heartbeat(fleet.store, busy).beat(WorkerState.BUSY)
    fleet.drain([ready, busy, booting, "i-unknown"])
    states = _ec2_states(moto, [ready, busy, booting])
    assert states[ready] in ("shutting-down", "terminated")
    assert states[busy] == states[booting] == "running"
    assert not fleet.store.exists(f"heartbeats/{ready}.json")
    deadline = time.monotonic() + 10
    while ready in {w.worker_id for w in fleet.list()} and time.monotonic() < deadline:
        time.sleep(0.2)
    listed = {w.worker_id: w.state for w in fleet.list()}
    assert listed.get(ready, WorkerState.DRAINING) == WorkerState.DRAINING
    assert len(fleet.launch(5)) == 1  # the drained one's place is free again


def test_close_terminates_only_what_this_fleet_launched(moto: Endpoint, fleet: Ec2Fleet) -> None:
    [mine] = fleet.launch(1)
    [theirs] = Ec2Fleet(fleet.ec2, fleet.names, fleet.store, max_workers=3).launch(1)
    fleet.close()
    states = _ec2_states(moto, [mine, theirs])
    assert states[mine] in ("shutting-down", "terminated")
    assert states[theirs] == "running"


def _ec2_states(moto: Endpoint, ids: list[str]) -> dict[str, str]:
    reservations = moto.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}
